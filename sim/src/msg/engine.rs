//! The discrete-event engine: one queue of events ordered by (time, seq),
//! the nodes' [`Mesh`] states, the links between them, churn and the
//! measurement hooks.
//!
//! Events live in a slab; the heap holds only (time, seq, slot), so a
//! message is moved into the queue once and moved out once, never cloned.
//! Randomness that depends on the order in which a node emits its outputs
//! (loss, per-message jitter) is a hash of the link and a per-direction
//! message counter, not a draw from a shared stream, so the run does not
//! depend on the iteration order of any hash map inside the mesh.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};

use foldhash::fast::FixedState;
use std::time::Duration;

use distsoc_protocol::ids::{NodeId, WormId};
use distsoc_protocol::mesh::share::SharedReports;
use distsoc_protocol::mesh::{
    Command, InEvent, Mesh, MeshConfig, MeshEvent, MeshMessage, MeshRequest, MeshResponse,
    OutEvent, PeerInfo, Refusal, RequestFailed,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::report::{Kind, Metrics};
use super::sizes::SizeModel;
use super::topology::{Profile, Topology};
use super::{mix, Params};

/// Nanoseconds.
pub(crate) type Ns = u64;

const SEC: Ns = 1_000_000_000;
/// A dial to an offline node fails after this long (QUIC handshake
/// timeout).
pub(crate) const DIAL_TIMEOUT: Ns = 5 * SEC;
/// Per-message jitter added to RTT/2.
const JITTER_NS: u64 = 2_000_000;
/// Lookup command ids of the measurement (below the mesh's own
/// bucket-refresh ids).
pub(crate) const LOOKUP_BASE: u64 = 1 << 40;

#[derive(Debug)]
enum Ev {
    Timer {
        node: u32,
        inc: u32,
    },
    Up {
        a: u32,
        b: u32,
        gen: u64,
        ainc: u32,
        binc: u32,
    },
    DialFailed {
        node: u32,
        inc: u32,
        peer: u32,
    },
    Down {
        to: u32,
        inc: u32,
        from: u32,
    },
    Msg {
        to: u32,
        from: u32,
        gen: u64,
        msg: MeshMessage,
    },
    Req {
        to: u32,
        from: u32,
        gen: u64,
        rid: u64,
        req: MeshRequest,
    },
    Resp {
        rid: u64,
        gen: u64,
        result: Result<MeshResponse, RequestFailed>,
    },
    ReqTimeout {
        rid: u64,
    },
    Join {
        node: u32,
    },
    ChurnLeave,
    ChurnJoin,
    Lookup,
    Sample,
    Check,
}

#[derive(Debug)]
struct Link {
    gen: u64,
    up: bool,
    /// Messages sent low → high and high → low.
    sent: [u64; 2],
}

#[derive(Debug)]
struct Pending {
    origin: u32,
    inc: u32,
    oid: u64,
    peer: u32,
}

/// One identity's slot.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) mesh: Option<Box<Mesh>>,
    pub(crate) inc: u32,
    timer_at: Option<Ns>,
    pub(crate) peers: BTreeSet<u32>,
    online_since: Ns,
    /// Online time inside the measurement window.
    pub(crate) window_online: Ns,
    /// Bytes sent inside the measurement window.
    pub(crate) window_bytes: u64,
}

/// A node's profile and map stats.
pub(crate) type ProfiledMap = (Profile, distsoc_protocol::mesh::MapStats);

/// A measured lookup.
#[derive(Debug, Clone)]
pub(crate) struct LookupRec {
    pub(crate) target: NodeId,
    pub(crate) worm: Option<WormId>,
    /// WormRequests carrying the worm id (the originator's included).
    pub(crate) forwards: u32,
    /// WormRequests and WormQueries carrying the worm id.
    pub(crate) messages: u32,
    pub(crate) done: Option<LookupDone>,
}

/// The outcome the originator reported.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LookupDone {
    pub(crate) found: bool,
    pub(crate) tier: Option<&'static str>,
    pub(crate) hops: u8,
    pub(crate) messages: u32,
    pub(crate) elapsed: Duration,
}

/// A departure whose convergence is measured.
#[derive(Debug)]
pub(crate) struct Departure {
    pub(crate) node: u32,
    /// The node's incarnation after it left (a rejoin bumps it).
    inc: u32,
    pub(crate) at: Ns,
    holders: Vec<u32>,
    pub(crate) converged: Option<Ns>,
    pub(crate) censored: bool,
    pub(crate) crash: bool,
}

/// The simulation state.
pub(crate) struct Sim {
    pub(crate) now: Ns,
    pub(crate) end: Ns,
    pub(crate) warmup: Ns,
    pub(crate) p: Params,
    pub(crate) topo: Topology,
    pub(crate) nodes: Vec<Node>,
    pub(crate) online: Vec<u32>,
    online_pos: Vec<u32>,
    offline: VecDeque<u32>,
    heap: BinaryHeap<Reverse<(Ns, u64, u32)>>,
    slab: Vec<Option<Ev>>,
    free: Vec<u32>,
    seq: u64,
    links: HashMap<(u32, u32), Link, FixedState>,
    next_gen: u64,
    pending: HashMap<u64, Pending, FixedState>,
    next_rid: u64,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) sizes: SizeModel,
    pub(crate) m: Metrics,
    pub(crate) lookups: Vec<LookupRec>,
    worms: HashMap<WormId, usize>,
    awaiting_worm: HashMap<u32, Vec<usize>>,
    pub(crate) departures: Vec<Departure>,
    pub(crate) events: u64,
    anchors_known: Vec<distsoc_protocol::messages::common::PeerAddress>,
    /// Report storage all meshes share (each peer's reported hop 1 and
    /// hop 2 stored once; one hop-3 fingerprint key).
    shared_reports: SharedReports,
}

const NOT_ONLINE: u32 = u32::MAX;

fn key(a: u32, b: u32) -> (u32, u32) {
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

fn dur(ns: Ns) -> Duration {
    Duration::from_nanos(ns)
}

fn exp_ns(rng: &mut ChaCha8Rng, rate_per_s: f64) -> Ns {
    let u = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    (-u.ln() / rate_per_s * 1e9) as Ns
}

impl Sim {
    pub(crate) fn new(p: Params, topo: Topology, sizes: SizeModel) -> Self {
        let total = topo.len() as usize;
        let end = p.duration.as_nanos() as Ns;
        let warmup = (p.warmup.as_nanos() as Ns).min(end / 2);
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ 0x6d73_6773_696d);
        let nodes = (0..total)
            .map(|_| Node {
                mesh: None,
                inc: 0,
                timer_at: None,
                peers: BTreeSet::new(),
                online_since: 0,
                window_online: 0,
                window_bytes: 0,
            })
            .collect();
        let anchors_known = topo.anchor_list();
        let offline: VecDeque<u32> = (topo.initial..topo.len()).collect();
        let shared_reports = SharedReports::new({
            let mut key = [0u8; 40];
            let mut h = blake3::Hasher::new();
            h.update(b"distsoc-sim shared hop-3 key");
            h.update(&p.seed.to_le_bytes());
            h.finalize_xof().fill(&mut key);
            key
        });
        let mut sim = Sim {
            now: 0,
            end,
            warmup,
            m: Metrics::new(end, p.sample_interval.as_nanos() as Ns),
            p,
            nodes,
            online: Vec::new(),
            online_pos: vec![NOT_ONLINE; total],
            offline,
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            seq: 0,
            links: HashMap::with_hasher(FixedState::with_seed(1)),
            next_gen: 1,
            pending: HashMap::with_hasher(FixedState::with_seed(2)),
            next_rid: 1,
            sizes,
            lookups: Vec::new(),
            worms: HashMap::new(),
            awaiting_worm: HashMap::new(),
            departures: Vec::new(),
            events: 0,
            anchors_known,
            shared_reports,
            rng: ChaCha8Rng::seed_from_u64(0),
            topo,
        };
        // Anchors at t = 0, everyone else over the join window.
        let window = sim.p.join_window.as_nanos() as Ns;
        for i in 0..sim.topo.initial {
            let at = if i < sim.topo.anchors {
                0
            } else {
                rng.next_u64() % window.max(1)
            };
            sim.push(at, Ev::Join { node: i });
        }
        let churn_rate = sim.churn_rate();
        if churn_rate > 0.0 {
            let t0 = window;
            let a = t0 + exp_ns(&mut rng, churn_rate);
            let b = t0 + exp_ns(&mut rng, churn_rate);
            sim.push(a, Ev::ChurnLeave);
            sim.push(b, Ev::ChurnJoin);
        }
        // Measurement lookups: uniform times after the warm-up.
        let span = end.saturating_sub(warmup + 30 * SEC).max(1);
        for _ in 0..sim.p.lookups {
            let at = warmup + rng.next_u64() % span;
            sim.push(at, Ev::Lookup);
        }
        let step = sim.p.sample_interval.as_nanos() as Ns;
        sim.push(step.max(SEC), Ev::Sample);
        sim.push(warmup, Ev::Check);
        sim.rng = rng;
        sim
    }

    /// Departures per second (and as many joins).
    fn churn_rate(&self) -> f64 {
        self.p.churn / 100.0 * f64::from(self.topo.initial - self.topo.anchors) / 3600.0
    }

    fn push(&mut self, at: Ns, ev: Ev) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = Some(ev);
                s
            }
            None => {
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.seq += 1;
        self.heap.push(Reverse((at.max(self.now), self.seq, slot)));
    }

    /// Runs to the end; `tick` is called every 65,536 events with the
    /// simulated time.
    pub(crate) fn run(&mut self, mut tick: impl FnMut(Ns)) {
        while let Some(Reverse((t, _, slot))) = self.heap.pop() {
            if t > self.end {
                break;
            }
            self.now = t;
            let Some(ev) = self.slab[slot as usize].take() else {
                continue;
            };
            self.free.push(slot);
            self.events += 1;
            if self.events & 0xFFFF == 0 {
                tick(t);
            }
            self.dispatch(ev);
        }
        self.now = self.end;
        for i in 0..self.nodes.len() {
            if self.nodes[i].mesh.is_some() {
                self.close_window(i as u32);
            }
        }
    }

    fn is_live(&self, node: u32, inc: u32) -> bool {
        let n = &self.nodes[node as usize];
        n.inc == inc && n.mesh.is_some()
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Timer { node, inc } => {
                let n = &mut self.nodes[node as usize];
                if n.inc == inc && n.mesh.is_some() && n.timer_at == Some(self.now) {
                    n.timer_at = None;
                    self.feed(node, InEvent::Tick);
                }
            }
            Ev::Up {
                a,
                b,
                gen,
                ainc,
                binc,
            } => self.link_up(a, b, gen, ainc, binc),
            Ev::DialFailed { node, inc, peer } => {
                if self.is_live(node, inc) {
                    let peer = self.topo.ids[peer as usize];
                    self.feed(node, InEvent::DialFailed { peer });
                }
            }
            Ev::Down { to, inc, from } => {
                let up = self.links.get(&key(to, from)).is_some_and(|l| l.up);
                if self.is_live(to, inc) && !up {
                    let peer = self.topo.ids[from as usize];
                    self.feed(to, InEvent::PeerDown { peer });
                }
            }
            Ev::Msg { to, from, gen, msg } => {
                if self.link_is(to, from, gen) {
                    let peer = self.topo.ids[from as usize];
                    self.feed(to, InEvent::Message { peer, msg });
                }
            }
            Ev::Req {
                to,
                from,
                gen,
                rid,
                req,
            } => {
                if self.link_is(to, from, gen) {
                    let peer = self.topo.ids[from as usize];
                    self.feed(to, InEvent::Request { peer, id: rid, req });
                }
                // Otherwise the request is lost: ReqTimeout answers it.
            }
            Ev::Resp { rid, gen, result } => {
                let Some(p) = self.pending.get(&rid) else {
                    return;
                };
                if !self.link_is(p.origin, p.peer, gen) {
                    return;
                }
                if let Some(p) = self.pending.remove(&rid) {
                    if self.is_live(p.origin, p.inc) {
                        self.feed(p.origin, InEvent::Response { id: p.oid, result });
                    }
                }
            }
            Ev::ReqTimeout { rid } => {
                if let Some(p) = self.pending.remove(&rid) {
                    if self.is_live(p.origin, p.inc) {
                        self.feed(
                            p.origin,
                            InEvent::Response {
                                id: p.oid,
                                result: Err(RequestFailed::Failed),
                            },
                        );
                    }
                }
            }
            Ev::Join { node } => self.join(node),
            Ev::ChurnLeave => {
                let rate = self.churn_rate();
                let next = self.now + exp_ns(&mut self.rng, rate);
                self.push(next, Ev::ChurnLeave);
                let movable = self.online.len() as u64;
                if movable > u64::from(self.topo.anchors) + 1 {
                    // Anchors never churn: redraw (bounded) if one is drawn.
                    for _ in 0..16 {
                        let i = self.online[(self.rng.next_u64() % movable) as usize];
                        if self.topo.profile[i as usize] != Profile::Anchor {
                            let crash = self.rng.next_u64().is_multiple_of(2);
                            self.depart(i, crash);
                            break;
                        }
                    }
                }
            }
            Ev::ChurnJoin => {
                let rate = self.churn_rate();
                let next = self.now + exp_ns(&mut self.rng, rate);
                self.push(next, Ev::ChurnJoin);
                if let Some(i) = self.offline.pop_front() {
                    self.join(i);
                }
            }
            Ev::Lookup => self.start_lookup(),
            Ev::Sample => {
                let step = self.p.sample_interval.as_nanos() as Ns;
                self.push(self.now + step.max(SEC), Ev::Sample);
                self.sample();
            }
            Ev::Check => {
                self.push(self.now + self.p.check_interval.as_nanos() as Ns, Ev::Check);
                self.check_departures();
            }
        }
    }

    /// Hands one input to a node and routes what it emits.
    fn feed(&mut self, node: u32, ev: InEvent) {
        let now = dur(self.now);
        if let Some(m) = self.nodes[node as usize].mesh.as_mut() {
            m.handle(now, ev);
        }
        self.drain(node);
    }

    fn link_is(&self, a: u32, b: u32, gen: u64) -> bool {
        self.links
            .get(&key(a, b))
            .is_some_and(|l| l.up && l.gen == gen)
    }

    /// The delivery delay of the next message from `from` to `to` on their
    /// link, or None if it is lost (or there is no link).
    fn transit(&mut self, from: u32, to: u32) -> Option<(u64, Ns)> {
        let k = key(from, to);
        let dir = usize::from(from > to);
        let link = self.links.get_mut(&k).filter(|l| l.up)?;
        link.sent[dir] += 1;
        let n = link.sent[dir];
        let gen = link.gen;
        let h = mix(
            mix(
                self.p.seed ^ 0x7472_616e,
                (u64::from(from) << 32) | u64::from(to),
            ),
            n,
        );
        if self.p.loss > 0.0 && ((h >> 11) as f64 / (1u64 << 53) as f64) < self.p.loss {
            self.m.lost += 1;
            return None;
        }
        let one_way = self.topo.rtt_ns(from, to) / 2 + (h & 0xFFFF_FFFF) % JITTER_NS;
        Some((gen, one_way))
    }

    fn account(&mut self, node: u32, kind: Kind, bytes: u64) {
        self.m.sent(self.now, kind, bytes, self.now >= self.warmup);
        if self.now >= self.warmup {
            self.nodes[node as usize].window_bytes += bytes;
        }
    }

    fn drain(&mut self, node: u32) {
        while let Some(out) = self.nodes[node as usize]
            .mesh
            .as_mut()
            .and_then(|m| m.poll())
        {
            self.route(node, out);
        }
        self.reschedule(node);
    }

    fn reschedule(&mut self, node: u32) {
        let n = &self.nodes[node as usize];
        let Some(t) = n.mesh.as_ref().and_then(|m| m.poll_timeout()) else {
            return;
        };
        let t = (t.as_nanos() as Ns).max(self.now);
        if n.timer_at.is_some_and(|s| s <= t) {
            return;
        }
        let inc = n.inc;
        self.nodes[node as usize].timer_at = Some(t);
        self.push(t, Ev::Timer { node, inc });
    }

    fn index(&self, id: &NodeId) -> Option<u32> {
        self.topo.index.get(id).copied()
    }

    fn route(&mut self, node: u32, out: OutEvent) {
        match out {
            OutEvent::Push { peer, msg } => {
                let Some(to) = self.index(&peer) else { return };
                let kind = match &msg {
                    MeshMessage::RoutingDiff(_) => Kind::Diff,
                    MeshMessage::InitialMapSync(_) => Kind::Sync,
                    MeshMessage::MapSyncRequest(_) => Kind::SyncRequest,
                };
                let (bytes, msg) = self.sizes.push(msg);
                self.account(node, kind, bytes);
                let Some(msg) = msg else { return };
                if let Some((gen, delay)) = self.transit(node, to) {
                    self.push(
                        self.now + delay,
                        Ev::Msg {
                            to,
                            from: node,
                            gen,
                            msg,
                        },
                    );
                }
            }
            OutEvent::Request {
                peer,
                id,
                req,
                timeout,
            } => {
                let Some(to) = self.index(&peer) else { return };
                let bytes = self.sizes.request(&req);
                let kind = match &req {
                    MeshRequest::Worm(w) => {
                        self.track_worm(node, &w.worm_id, w.targets.first(), true);
                        Kind::WormRequest
                    }
                    MeshRequest::Query(q) => {
                        self.track_worm(node, &q.worm_id, q.targets.first(), false);
                        Kind::WormQuery
                    }
                    MeshRequest::Address(_) => Kind::AddressRequest,
                };
                self.account(node, kind, bytes);
                let rid = self.next_rid;
                self.next_rid += 1;
                let inc = self.nodes[node as usize].inc;
                self.pending.insert(
                    rid,
                    Pending {
                        origin: node,
                        inc,
                        oid: id,
                        peer: to,
                    },
                );
                self.push(self.now + timeout.as_nanos() as Ns, Ev::ReqTimeout { rid });
                if let Some((gen, delay)) = self.transit(node, to) {
                    self.push(
                        self.now + delay,
                        Ev::Req {
                            to,
                            from: node,
                            gen,
                            rid,
                            req,
                        },
                    );
                }
            }
            OutEvent::Respond { id, result } => {
                let bytes = self.sizes.response(&result);
                let kind = match &result {
                    Ok(MeshResponse::Worm(_)) => Kind::WormResponse,
                    Ok(MeshResponse::Address(_)) => Kind::AddressResponse,
                    Err(r) => {
                        match r {
                            Refusal::RateLimited(_) => self.m.refused_rate_limited += 1,
                            Refusal::Malformed(_) | Refusal::TooLarge(_) => {
                                self.m.refused_malformed += 1
                            }
                        }
                        Kind::Error
                    }
                };
                self.account(node, kind, bytes);
                let Some(origin) = self.pending.get(&id).map(|p| p.origin) else {
                    return;
                };
                let result = result.map_err(|_| RequestFailed::Refused);
                if let Some((gen, delay)) = self.transit(node, origin) {
                    self.push(
                        self.now + delay,
                        Ev::Resp {
                            rid: id,
                            gen,
                            result,
                        },
                    );
                }
            }
            OutEvent::Connect { peer, .. } => {
                if let Some(b) = self.index(&peer) {
                    self.dial(node, b);
                }
            }
            OutEvent::Disconnect { peer } => {
                if let Some(b) = self.index(&peer) {
                    self.close(node, b);
                }
            }
            OutEvent::Event(MeshEvent::LookupDone(o)) => {
                if o.id >= LOOKUP_BASE && o.id < LOOKUP_BASE + self.lookups.len() as u64 {
                    let i = (o.id - LOOKUP_BASE) as usize;
                    let found = o.found.as_ref().is_some_and(|(p, _)| p.node_id == o.target);
                    self.lookups[i].done = Some(LookupDone {
                        found,
                        tier: o.found.as_ref().map(|(_, t)| t.as_str()),
                        hops: o.hops,
                        messages: o.messages,
                        elapsed: o.elapsed,
                    });
                    if let Some(v) = self.awaiting_worm.get_mut(&node) {
                        v.retain(|&x| x != i);
                    }
                }
            }
        }
    }

    fn track_worm(&mut self, node: u32, worm: &WormId, first: Option<&NodeId>, forward: bool) {
        if let Some(&i) = self.worms.get(worm) {
            let l = &mut self.lookups[i];
            l.messages += 1;
            if forward {
                l.forwards += 1;
            }
            return;
        }
        let Some(first) = first else { return };
        let Some(waiting) = self.awaiting_worm.get_mut(&node) else {
            return;
        };
        let Some(pos) = waiting
            .iter()
            .position(|&i| self.lookups[i].target == *first && self.lookups[i].worm.is_none())
        else {
            return;
        };
        let i = waiting.swap_remove(pos);
        self.worms.insert(*worm, i);
        let l = &mut self.lookups[i];
        l.worm = Some(*worm);
        l.messages += 1;
        l.forwards += u32::from(forward);
    }

    fn dial(&mut self, a: u32, b: u32) {
        if a == b || self.links.contains_key(&key(a, b)) {
            return;
        }
        let ainc = self.nodes[a as usize].inc;
        if self.nodes[b as usize].mesh.is_none() {
            self.push(
                self.now + DIAL_TIMEOUT,
                Ev::DialFailed {
                    node: a,
                    inc: ainc,
                    peer: b,
                },
            );
            return;
        }
        let gen = self.next_gen;
        self.next_gen += 1;
        self.links.insert(
            key(a, b),
            Link {
                gen,
                up: false,
                sent: [0, 0],
            },
        );
        let binc = self.nodes[b as usize].inc;
        let rtt = self.topo.rtt_ns(a, b);
        self.push(
            self.now + rtt,
            Ev::Up {
                a,
                b,
                gen,
                ainc,
                binc,
            },
        );
    }

    fn info(&self, i: u32, outbound: bool) -> PeerInfo {
        PeerInfo {
            addresses: vec![self.topo.addr(i)],
            is_anchor: self.topo.profile[i as usize] == Profile::Anchor,
            outbound,
        }
    }

    fn link_up(&mut self, a: u32, b: u32, gen: u64, ainc: u32, binc: u32) {
        let k = key(a, b);
        let ours = self.links.get(&k).is_some_and(|l| l.gen == gen && !l.up);
        if !ours {
            if self.is_live(a, ainc) {
                let peer = self.topo.ids[b as usize];
                self.feed(a, InEvent::DialFailed { peer });
            }
            return;
        }
        if !self.is_live(a, ainc) {
            self.links.remove(&k);
            return;
        }
        if !self.is_live(b, binc) {
            self.links.remove(&k);
            let peer = self.topo.ids[b as usize];
            self.feed(a, InEvent::DialFailed { peer });
            return;
        }
        if let Some(l) = self.links.get_mut(&k) {
            l.up = true;
        }
        self.nodes[a as usize].peers.insert(b);
        self.nodes[b as usize].peers.insert(a);
        let (ia, ib) = (self.info(b, true), self.info(a, false));
        let (ida, idb) = (self.topo.ids[a as usize], self.topo.ids[b as usize]);
        self.feed(
            a,
            InEvent::PeerUp {
                peer: idb,
                info: ia,
            },
        );
        if self.link_is(a, b, gen) {
            self.feed(
                b,
                InEvent::PeerUp {
                    peer: ida,
                    info: ib,
                },
            );
        }
    }

    /// `a` closes its connection to `b`: `a` learns at once, `b` after the
    /// one-way delay.
    fn close(&mut self, a: u32, b: u32) {
        let Some(l) = self.links.remove(&key(a, b)) else {
            return;
        };
        if !l.up {
            return;
        }
        self.nodes[a as usize].peers.remove(&b);
        self.nodes[b as usize].peers.remove(&a);
        let (ainc, binc) = (self.nodes[a as usize].inc, self.nodes[b as usize].inc);
        self.push(
            self.now,
            Ev::Down {
                to: a,
                inc: ainc,
                from: b,
            },
        );
        let delay = self.topo.rtt_ns(a, b) / 2;
        self.push(
            self.now + delay,
            Ev::Down {
                to: b,
                inc: binc,
                from: a,
            },
        );
    }

    fn join(&mut self, i: u32) {
        if self.nodes[i as usize].mesh.is_some() {
            return;
        }
        let profile = self.topo.profile[i as usize];
        let inc = self.nodes[i as usize].inc;
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
        let mut mesh = Box::new(Mesh::new(id, config, seed, dur(self.now)));
        let now = dur(self.now);
        mesh.handle(
            now,
            InEvent::Command(Command::SetOwnAddresses(vec![self.topo.addr(i)])),
        );
        let anchors: Vec<_> = self
            .anchors_known
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
        let n = &mut self.nodes[i as usize];
        n.mesh = Some(mesh);
        n.timer_at = None;
        n.online_since = self.now;
        self.online_pos[i as usize] = self.online.len() as u32;
        self.online.push(i);
        self.m.joins += 1;
        self.drain(i);
    }

    fn close_window(&mut self, i: u32) {
        let n = &mut self.nodes[i as usize];
        let from = n.online_since.max(self.warmup);
        if self.now > from {
            n.window_online += self.now - from;
        }
    }

    /// A node leaves: cleanly (its peers learn after the one-way delay) or
    /// by crashing (its peers learn after the idle timeout).
    pub(crate) fn depart(&mut self, i: u32, crash: bool) {
        if self.nodes[i as usize].mesh.is_none() {
            return;
        }
        self.close_window(i);
        let track = self.now >= self.warmup
            && self.now + self.p.min_observation.as_nanos() as Ns <= self.end
            && self.departures.len() < self.p.departure_samples as usize;
        let peers: Vec<u32> = std::mem::take(&mut self.nodes[i as usize].peers)
            .into_iter()
            .collect();
        for p in peers {
            self.links.remove(&key(i, p));
            self.nodes[p as usize].peers.remove(&i);
            let delay = if crash {
                self.p.crash_idle.as_nanos() as Ns
            } else {
                self.topo.rtt_ns(i, p) / 2
            };
            let inc = self.nodes[p as usize].inc;
            self.push(
                self.now + delay,
                Ev::Down {
                    to: p,
                    inc,
                    from: i,
                },
            );
        }
        if let Some(m) = self.nodes[i as usize].mesh.take() {
            self.m.add_counters(&m.counters());
        }
        let n = &mut self.nodes[i as usize];
        n.inc += 1;
        n.timer_at = None;
        let inc = n.inc;
        let pos = self.online_pos[i as usize] as usize;
        self.online.swap_remove(pos);
        if let Some(&moved) = self.online.get(pos) {
            self.online_pos[moved as usize] = pos as u32;
        }
        self.online_pos[i as usize] = NOT_ONLINE;
        self.offline.push_back(i);
        if crash {
            self.m.crashes += 1;
        } else {
            self.m.leaves += 1;
        }
        if track {
            let id = self.topo.ids[i as usize];
            let holders: Vec<u32> = self
                .online
                .iter()
                .copied()
                .filter(|&j| {
                    self.nodes[j as usize]
                        .mesh
                        .as_ref()
                        .is_some_and(|m| m.map().contains(&id))
                })
                .collect();
            self.departures.push(Departure {
                node: i,
                inc,
                at: self.now,
                holders,
                converged: None,
                censored: false,
                crash,
            });
        }
    }

    fn holds(&self, j: u32, id: &NodeId) -> bool {
        self.nodes[j as usize]
            .mesh
            .as_ref()
            .is_some_and(|m| m.map().contains(id))
    }

    fn check_departures(&mut self) {
        let now = self.now;
        for d in 0..self.departures.len() {
            if self.departures[d].converged.is_some() || self.departures[d].censored {
                continue;
            }
            let x = self.departures[d].node;
            if self.nodes[x as usize].inc != self.departures[d].inc
                || self.nodes[x as usize].mesh.is_some()
            {
                self.departures[d].censored = true;
                continue;
            }
            let id = self.topo.ids[x as usize];
            let mut holders = std::mem::take(&mut self.departures[d].holders);
            holders.retain(|&j| self.holds(j, &id));
            if holders.is_empty() {
                // Confirm over every online node (a stale entry can spread
                // to nodes that did not hold it at the departure).
                holders = self
                    .online
                    .iter()
                    .copied()
                    .filter(|&j| self.holds(j, &id))
                    .collect();
                if holders.is_empty() {
                    self.departures[d].converged = Some(now - self.departures[d].at);
                }
            }
            self.departures[d].holders = holders;
        }
    }

    fn start_lookup(&mut self) {
        let n = self.online.len() as u64;
        if n < 3 {
            return;
        }
        let origin = loop {
            let o = self.online[(self.rng.next_u64() % n) as usize];
            if self.topo.profile[o as usize] != Profile::Anchor {
                break o;
            }
        };
        let mut target = None;
        for _ in 0..self.p.target_draws {
            let t = self.online[(self.rng.next_u64() % n) as usize];
            let id = self.topo.ids[t as usize];
            if t != origin && (!self.p.targets_outside_map || !self.holds(origin, &id)) {
                target = Some(id);
                break;
            }
        }
        let Some(target) = target else {
            self.m.lookups_no_target += 1;
            return;
        };
        let i = self.lookups.len();
        self.lookups.push(LookupRec {
            target,
            worm: None,
            forwards: 0,
            messages: 0,
            done: None,
        });
        self.awaiting_worm.entry(origin).or_default().push(i);
        let id = LOOKUP_BASE + i as u64;
        self.feed(origin, InEvent::Command(Command::Lookup { target, id }));
    }

    fn sample(&mut self) {
        let online = self.online.len();
        let mut conns: Vec<u64> = Vec::with_capacity(online);
        for &i in &self.online {
            if let Some(m) = &self.nodes[i as usize].mesh {
                conns.push(m.peers().count() as u64);
            }
        }
        let k = (self.p.map_samples as usize).min(online);
        let mut stats = Vec::with_capacity(k);
        for s in 0..k {
            // An evenly spread, rotating sample of the online nodes.
            let pos = (s * online / k.max(1) + (self.m.samples.len() % 7)) % online.max(1);
            let i = self.online[pos];
            if let Some(m) = self.nodes[i as usize].mesh.as_mut() {
                stats.push(m.map_stats());
            }
        }
        self.m.sample(self.now, online, &conns, &stats);
    }

    /// Adds the counters of every online node to the totals (at the end).
    pub(crate) fn final_counters(&mut self) {
        for n in &self.nodes {
            if let Some(m) = &n.mesh {
                self.m.add_counters(&m.counters());
            }
        }
    }

    /// Map stats of up to `k` online nodes (evenly spread) and every online
    /// node's connection count, with its profile.
    pub(crate) fn final_maps(&mut self, k: usize) -> (Vec<ProfiledMap>, Vec<(Profile, u64)>) {
        let online = self.online.clone();
        let mut conns = Vec::with_capacity(online.len());
        for &i in &online {
            if let Some(m) = &self.nodes[i as usize].mesh {
                conns.push((self.topo.profile[i as usize], m.peers().count() as u64));
            }
        }
        let k = k.min(online.len());
        let mut maps = Vec::with_capacity(k);
        for s in 0..k {
            let i = online[s * online.len() / k.max(1)];
            let p = self.topo.profile[i as usize];
            if let Some(m) = self.nodes[i as usize].mesh.as_mut() {
                maps.push((p, m.map_stats()));
            }
        }
        (maps, conns)
    }
}
