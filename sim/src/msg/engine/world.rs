//! Where each node runs ([`Placement`]: its shard and slot, and the
//! lookahead that placement allows) and what every shard reads of the
//! others ([`World`]).

use super::*;

impl Placement {
    /// One thread: one shard. Two to six threads: a shard per region (the
    /// lookahead between two is half their RTT: 35 ms for the closest,
    /// NA-east and NA-west, up to 110 ms). More threads: node `i` in shard
    /// `i % threads`, 10 ms between any two. Also returns the lookahead
    /// matrix (see [`World::la`]) and the number of shards.
    pub(super) fn new(topo: &Topology, threads: u32) -> (Self, Vec<Vec<Ns>>, u32) {
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
        // The smallest one-way delay from a node of one shard to a node of
        // another (no jitter): RTT/2 of the closest regions in the two, or
        // of one region if a region spans both; then the shortest path over
        // the shards (a chain of effects through a third shard is never
        // faster than this either), the diagonal the shortest round trip
        // through another shard (what a shard's own events can cause to its
        // nodes by way of another shard).
        let mut regions = vec![Vec::new(); BASE_RTT_MS.len()];
        for (i, &k) in shard.iter().enumerate() {
            let r = topo.region[i] as usize;
            if !regions[r].contains(&k) {
                regions[r].push(k);
            }
        }
        let n = shards as usize;
        let mut la = vec![vec![Ns::MAX / 4; n]; n];
        for (a, ka) in regions.iter().enumerate() {
            for (b, kb) in regions.iter().enumerate() {
                for &x in ka {
                    for &y in kb {
                        if x != y {
                            let d = (BASE_RTT_MS[a][b] * 1_000_000 / 2).max(1);
                            let e = &mut la[x as usize][y as usize];
                            *e = (*e).min(d);
                        }
                    }
                }
            }
        }
        for m in 0..n {
            for x in 0..n {
                for y in 0..n {
                    let via = la[x][m].saturating_add(la[m][y]);
                    if via < la[x][y] {
                        la[x][y] = via;
                    }
                }
            }
        }
        (Placement { shard, slot }, la, shards)
    }
}

impl World {
    pub(super) fn status(&self, i: u32) -> u64 {
        self.status[i as usize].load(Ordering::Relaxed)
    }

    /// Online at `now` (an initial node is online from its join time,
    /// set when the run starts).
    pub(super) fn online(&self, i: u32, now: Ns) -> bool {
        self.status(i) & 1 == 1 && self.since[i as usize].load(Ordering::Relaxed) <= now
    }

    /// Online at `now` in incarnation `inc`.
    pub(super) fn live(&self, i: u32, inc: u32, now: Ns) -> bool {
        self.status(i) == (u64::from(inc) << 1 | 1)
            && self.since[i as usize].load(Ordering::Relaxed) <= now
    }

    pub(super) fn inc(&self, i: u32) -> u32 {
        (self.status(i) >> 1) as u32
    }

    /// Written only by global events, and for the initial joins before
    /// the run (their times known from the start).
    pub(super) fn set_status(&self, i: u32, inc: u32, online: bool, since: Ns) {
        self.since[i as usize].store(since, Ordering::Relaxed);
        self.status[i as usize].store(u64::from(inc) << 1 | u64::from(online), Ordering::Relaxed);
    }

    /// Node `i`'s mesh as it joins at `now` in incarnation `inc`.
    pub(super) fn new_mesh(&self, i: u32, inc: u32, now: Ns) -> Box<Mesh> {
        let profile = self.topo.profile[i as usize];
        let mut seed = [0u8; 32];
        let mut h = blake3::Hasher::new();
        h.update(b"distsoc-sim msg mesh seed");
        h.update(&self.p.seed.to_le_bytes());
        h.update(&i.to_le_bytes());
        h.update(&inc.to_le_bytes());
        seed.copy_from_slice(h.finalize().as_bytes());
        let id = self.topo.ids[i as usize];
        let config = MeshConfig {
            shared_reports: Some(self.shared_reports.clone()),
            ..profile.config()
        };
        let now = dur(now);
        let mut mesh = Box::new(Mesh::new(id, config, seed, now));
        mesh.handle(
            now,
            InEvent::Command(Command::SetOwnAddresses(vec![self.topo.addr(i)])),
        );
        let anchors: Vec<_> = self
            .anchors
            .iter()
            .filter(|a| a.node_id != id)
            .cloned()
            .collect();
        mesh.handle(now, InEvent::Command(Command::AddKnown(anchors)));
        if profile != Profile::Anchor {
            mesh.handle(
                now,
                InEvent::Command(Command::SetSocial(self.topo.wish_list(i))),
            );
        }
        mesh
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
