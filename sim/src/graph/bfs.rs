//! Exact map sizes by breadth-first search on the implicit graph, with
//! sorted `Vec<u32>` sets (radix sort + dedup + merge) instead of hash sets.

use super::topology::{Scratch, Topology};

/// The map of one node: how many distinct nodes lie at each distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapSizes {
    /// Nodes at distance 1 (its peers; duplicates links counted once).
    pub hop1: u64,
    /// Nodes at distance 2.
    pub hop2: u64,
    /// Nodes at distance 3.
    pub hop3: u64,
    /// Nodes other than itself within distance 4: what one fan-out checks
    /// (the union of its peers' 3-hop maps).
    pub fanout_entries: u64,
}

/// Reusable buffers of one BFS worker.
#[derive(Debug, Default)]
pub struct BfsBuffers {
    seen: Vec<u32>,
    frontier: Vec<u32>,
    raw: Vec<u32>,
    tmp: Vec<u32>,
    merged: Vec<u32>,
}

impl BfsBuffers {
    /// Empty buffers (they grow to ~2×30M u32 at 2×10⁹ nodes).
    pub fn new() -> Self {
        Self::default()
    }
}

/// The map sizes of node `s`: expands every node at distance ≤ 3 (the
/// nodes at distance 4 are counted, not expanded).
pub fn map_sizes(topo: &Topology, s: u32, scratch: &mut Scratch, buf: &mut BfsBuffers) -> MapSizes {
    buf.seen.clear();
    buf.seen.push(s);
    buf.frontier.clear();
    buf.frontier.push(s);
    let mut counts = [0u64; 5];
    for (d, count) in counts.iter_mut().enumerate().skip(1) {
        buf.raw.clear();
        for &v in &buf.frontier {
            topo.neighbors(v, scratch, &mut buf.raw);
        }
        radix_sort(&mut buf.raw, &mut buf.tmp);
        buf.raw.dedup();
        difference_in_place(&mut buf.raw, &buf.seen);
        *count = buf.raw.len() as u64;
        if d < 4 {
            merge_into(&buf.seen, &buf.raw, &mut buf.merged);
            std::mem::swap(&mut buf.seen, &mut buf.merged);
            std::mem::swap(&mut buf.frontier, &mut buf.raw);
        }
    }
    MapSizes {
        hop1: counts[1],
        hop2: counts[2],
        hop3: counts[3],
        fanout_entries: counts[1] + counts[2] + counts[3] + counts[4],
    }
}

/// The ball of radius `r ≤ 2` around `x`, sorted and without duplicates.
pub fn ball(topo: &Topology, x: u32, r: u32, scratch: &mut Scratch, out: &mut Vec<u32>) {
    out.clear();
    out.push(x);
    let mut frontier = vec![x];
    for _ in 0..r {
        let mut next = Vec::new();
        for &v in &frontier {
            topo.neighbors(v, scratch, &mut next);
        }
        out.extend_from_slice(&next);
        frontier = next;
    }
    out.sort_unstable();
    out.dedup();
}

/// True if the sorted slices share an element.
pub fn intersects(a: &[u32], b: &[u32]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// Removes from sorted, deduplicated `a` every element of sorted `b`.
fn difference_in_place(a: &mut Vec<u32>, b: &[u32]) {
    let mut w = 0;
    let mut j = 0;
    for r in 0..a.len() {
        let x = a[r];
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        a[w] = x;
        w += 1;
    }
    a.truncate(w);
}

/// `out` = sorted union of the disjoint sorted slices `a` and `b`.
fn merge_into(a: &[u32], b: &[u32], out: &mut Vec<u32>) {
    out.clear();
    out.reserve(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] < b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

/// LSD radix sort of `u32`s in passes of 11 bits (only as many passes as
/// the largest value needs); `tmp` is scratch space. Small inputs use the
/// standard sort.
pub fn radix_sort(v: &mut Vec<u32>, tmp: &mut Vec<u32>) {
    if v.len() < 4096 {
        v.sort_unstable();
        return;
    }
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    let max = v.iter().copied().max().unwrap_or(0);
    let passes = (32 - max.leading_zeros()).div_ceil(BITS).max(1);
    let mut counts = vec![[0usize; BUCKETS]; passes as usize];
    for &x in v.iter() {
        for (p, c) in counts.iter_mut().enumerate() {
            c[((x >> (p as u32 * BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    tmp.clear();
    tmp.resize(v.len(), 0);
    for (pass, c) in counts.iter_mut().enumerate() {
        let shift = pass as u32 * BITS;
        let mut sum = 0;
        for slot in c.iter_mut() {
            let k = *slot;
            *slot = sum;
            sum += k;
        }
        for &x in v.iter() {
            let k = ((x >> shift) as usize) & (BUCKETS - 1);
            tmp[c[k]] = x;
            c[k] += 1;
        }
        std::mem::swap(v, tmp);
    }
}
