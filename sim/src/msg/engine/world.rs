//! Where each node runs ([`Placement`]: its shard and slot, and the
//! lookahead that placement allows) and what every shard reads of the
//! others ([`World`]).

use super::*;

impl Placement {
    /// One thread: one shard, and a window lasts until the next global
    /// event. Up to six threads: a shard per region, so a window lasts 35
    /// ms (the closest regions, NA-east and NA-west, are 70 ms apart), and
    /// the threads take the shards of a window one by one, the busiest lately
    /// first.
    /// More threads: node `i` in shard `i % threads`, 10 ms.
    pub(super) fn new(topo: &Topology, threads: u32) -> (Self, Ns, u32) {
        let n = topo.len() as usize;
        let regions = BASE_RTT_MS.len() as u32;
        let shards = match threads {
            1 => 1,
            t if t <= regions => regions,
            t => t,
        };
        let shard: Vec<u32> = (0..n as u32)
            .map(|i| match shards {
                1 => 0,
                s if s == regions && threads <= regions => u32::from(topo.region[i as usize]),
                s => i % s,
            })
            .collect();
        let mut count = vec![0u32; shards as usize];
        let slot = shard
            .iter()
            .map(|&k| {
                count[k as usize] += 1;
                count[k as usize] - 1
            })
            .collect();
        // The smallest one-way delay between nodes of two shards (no
        // jitter): RTT/2 of the closest regions in different shards, or of
        // one region if a region spans shards.
        let lookahead = if shards == 1 {
            Ns::MAX / 4
        } else {
            let mut regions = vec![Vec::new(); BASE_RTT_MS.len()];
            for (i, &k) in shard.iter().enumerate() {
                let r = topo.region[i] as usize;
                if !regions[r].contains(&k) {
                    regions[r].push(k);
                }
            }
            let mut min_ms = u64::MAX;
            for (a, ka) in regions.iter().enumerate() {
                for (b, kb) in regions.iter().enumerate() {
                    if ka.iter().any(|x| kb.iter().any(|y| x != y)) {
                        min_ms = min_ms.min(BASE_RTT_MS[a][b]);
                    }
                }
            }
            (min_ms.min(1_000_000) * 1_000_000 / 2).max(1)
        };
        (Placement { shard, slot }, lookahead, shards)
    }
}

impl World {
    pub(super) fn status(&self, i: u32) -> u64 {
        self.status[i as usize].load(Ordering::Relaxed)
    }

    /// Online in incarnation `inc`.
    pub(super) fn live(&self, i: u32, inc: u32) -> bool {
        self.status(i) == (u64::from(inc) << 1 | 1)
    }

    pub(super) fn online(&self, i: u32) -> bool {
        self.status(i) & 1 == 1
    }

    pub(super) fn inc(&self, i: u32) -> u32 {
        (self.status(i) >> 1) as u32
    }

    pub(super) fn set_status(&self, i: u32, inc: u32, online: bool) {
        self.status[i as usize].store(u64::from(inc) << 1 | u64::from(online), Ordering::Relaxed);
    }

    pub(super) fn shard_of(&self, i: u32) -> usize {
        self.place.shard[i as usize] as usize
    }

    pub(super) fn info(&self, i: u32, outbound: bool) -> PeerInfo {
        PeerInfo {
            addresses: vec![self.topo.addr(i)],
            is_anchor: self.topo.profile[i as usize] == Profile::Anchor,
            outbound,
        }
    }
}
