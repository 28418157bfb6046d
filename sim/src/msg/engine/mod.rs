//! The discrete-event engine: the nodes' [`Mesh`] states partitioned into
//! shards (a region each with 2–6 threads), a queue of node events per
//! shard ordered by (time, source node, source's counter), a queue of
//! global events (churn, lookups, samples, checks), and the measurement
//! hooks.
//!
//! # Shards and chunks
//!
//! Each shard (`Placement`) holds a set of nodes and one queue of their
//! events. Every effect a node has on a node of another shard arrives at
//! least that pair's lookahead later (the smallest one-way delay between
//! the shards' regions, RTT/2: 35–110 ms with a shard per region, as for
//! two to six threads, 10 ms otherwise): messages, requests and answers
//! (RTT/2 + jitter), the handshake steps (RTT/2 each), a peer's close
//! notice (RTT/2). So a shard can run ahead of the others by that much:
//! the run's threads take the shards one at a time and run each up to
//! the horizon the others' progress allows (a chunk; see `sched` for the
//! rule and why it is safe), with no lock-step between them. Within a
//! chunk a shard pops its own queue in key order, and what its nodes
//! cause to its own nodes (a timer, the closer's own `PeerDown`, a
//! message) goes back into that queue; what they cause to another shard's
//! nodes goes to an outbox, handed over when the chunk ends. The key of an
//! event is (time, source node, that node's own counter): unique and
//! independent of the thread that made it, so each node sees its events
//! in the same order whatever the placement and the chunks. The records
//! the measurement keeps across nodes (which worm belongs to which
//! measured lookup, finished lookups) are applied before each global
//! event in (time, node) order. Global events run alone, once every node
//! event before their time has run, before the node events of their own
//! time. Nothing in a chunk reads another node's state except its
//! liveness (a status array changed only by global events, and for the
//! initial joins set from their times before the run), so the run is
//! the same for any number of threads (and for the engines before: one
//! queue with 10 ms windows, then a queue per shard with lock-step
//! windows of 35 ms; same reports).

//! Randomness that depends on the order in which a node emits its outputs
//! (loss, per-message jitter) is a hash of the link and a per-direction
//! message counter, not a draw from a shared stream, so the run does not
//! depend on the iteration order of any hash map inside the mesh. The
//! meshes share [`SharedReports`] (locked pools; a mesh's results do not
//! depend on what the pools hold).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
use super::topology::{Profile, Topology, BASE_RTT_MS};
use super::{mix, Params};

mod depart;
mod sched;
mod shard;
mod world;

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

/// The order of node events: (time, source node, the source's counter).
type Key = (Ns, u32, u64);

/// A node event; `to`/`node` is the node that handles it.
#[derive(Debug)]
enum Ev {
    /// An initial node joins (its time known from the start).
    Join {
        node: u32,
    },
    Timer {
        node: u32,
        inc: u32,
    },
    /// `from` dialed `to` (arrives RTT/2 after the dial).
    Syn {
        to: u32,
        from: u32,
        gen: u64,
        finc: u32,
        tinc: u32,
    },
    /// `from` accepted the dial (arrives one RTT after the dial).
    SynAck {
        to: u32,
        from: u32,
        gen: u64,
        tinc: u32,
        finc: u32,
    },
    /// `from` was offline when the dial arrived.
    Rst {
        to: u32,
        from: u32,
        tinc: u32,
        gen: u64,
    },
    /// The dialer `from` completed the handshake (RTT/2 after its SynAck).
    Est {
        to: u32,
        from: u32,
        gen: u64,
    },
    DialFailed {
        node: u32,
        inc: u32,
        peer: u32,
    },
    /// Connection `gen` between `to` and `from` is closed: the closer's own
    /// notice (`local`) or the other side's.
    Down {
        to: u32,
        from: u32,
        gen: u64,
        inc: u32,
        local: bool,
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
        to: u32,
        from: u32,
        gen: u64,
        rid: u64,
        result: Result<MeshResponse, RequestFailed>,
    },
    ReqTimeout {
        node: u32,
        rid: u64,
    },
}

impl Ev {
    fn target(&self) -> u32 {
        match self {
            Ev::Join { node }
            | Ev::Timer { node, .. }
            | Ev::DialFailed { node, .. }
            | Ev::ReqTimeout { node, .. } => *node,
            Ev::Syn { to, .. }
            | Ev::SynAck { to, .. }
            | Ev::Rst { to, .. }
            | Ev::Est { to, .. }
            | Ev::Down { to, .. }
            | Ev::Msg { to, .. }
            | Ev::Req { to, .. }
            | Ev::Resp { to, .. } => *to,
        }
    }
}

/// Global events: they run alone, between phases of chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum GEv {
    ChurnLeave,
    ChurnJoin,
    Lookup,
    Sample,
    Check,
}

/// The state of one end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndState {
    /// Our dial, not answered yet.
    Dialing,
    /// Their dial, accepted; waiting for the dialer's handshake to finish.
    Accepted,
    /// Open (the mesh got `PeerUp`).
    Up,
}

/// One node's end of a connection.
#[derive(Debug)]
struct End {
    /// The connection (unique: the dialer's index and its dial counter).
    gen: u64,
    state: EndState,
    /// The peer's incarnation.
    pinc: u32,
    /// Messages sent on it (the per-direction counter of the randomness).
    sent: u64,
}

#[derive(Debug)]
struct Pending {
    inc: u32,
    oid: u64,
}

/// One identity's slot.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) mesh: Option<Box<Mesh>>,
    pub(crate) inc: u32,
    timer_at: Option<Ns>,
    /// Connection ends by peer: looked up for every message sent and
    /// delivered, so a flat hash table (one or two cache lines a lookup;
    /// a `BTreeMap` of ~105 ends took several misses). Walked only when
    /// the node departs, then in peer order.
    ends: HashMap<u32, End, FixedState>,
    /// Requests this node sent, by request id.
    pending: HashMap<u64, Pending, FixedState>,
    /// Events this node has emitted (the last part of their keys).
    emitted: u64,
    /// Dials and requests (the low half of connection and request ids).
    dials: u64,
    requests: u64,
    online_since: Ns,
    /// Online time inside the measurement window.
    pub(crate) window_online: Ns,
    /// Bytes sent inside the measurement window.
    pub(crate) window_bytes: u64,
}

impl Node {
    fn new() -> Self {
        Node {
            mesh: None,
            inc: 0,
            timer_at: None,
            ends: HashMap::with_hasher(FixedState::with_seed(3)),
            pending: HashMap::with_hasher(FixedState::with_seed(2)),
            emitted: 0,
            dials: 0,
            requests: 0,
            online_since: 0,
            window_online: 0,
            window_bytes: 0,
        }
    }
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

/// What a shard hands the measurement (applied before each global event,
/// in (time, node) order).
#[derive(Debug)]
enum Rec {
    /// A WormRequest (`forward`) or WormQuery sent.
    Worm {
        t: Ns,
        node: u32,
        worm: WormId,
        first: Option<NodeId>,
        forward: bool,
    },
    /// A measured lookup's outcome.
    Done {
        t: Ns,
        node: u32,
        id: u64,
        done: LookupDone,
    },
}

impl Rec {
    fn order(&self) -> (Ns, u32) {
        match self {
            Rec::Worm { t, node, .. } | Rec::Done { t, node, .. } => (*t, *node),
        }
    }
}

/// What every shard reads: parameters, topology and each node's
/// liveness (written only by global events, and before the run for the
/// initial joins).
pub(crate) struct World {
    pub(crate) p: Params,
    pub(crate) topo: Topology,
    /// Per node: incarnation << 1 | online.
    status: Vec<AtomicU64>,
    /// Per node: online from this time (when `status` says online).
    since: Vec<AtomicU64>,
    /// The anchors as every node knows them from the start.
    anchors: Vec<distsoc_protocol::messages::common::PeerAddress>,
    /// Report storage all meshes share (each peer's reported hop 1 and
    /// hop 2 stored once; one hop-3 fingerprint key).
    shared_reports: SharedReports,
    pub(crate) warmup: Ns,
    /// Shards (threads).
    threads: u32,
    /// Which shard holds each node, and where.
    place: Arc<Placement>,
    /// `la[a][b]`: no event of shard `a` affects a node of shard `b`
    /// sooner than this (the shortest one-way delay, closed over paths
    /// through other shards).
    pub(crate) la: Vec<Vec<Ns>>,
}

/// Which shard holds each node (`shard`), at which index (`slot`).
pub(crate) struct Placement {
    shard: Vec<u32>,
    slot: Vec<u32>,
}

/// The nodes of one shard ([`Placement`]), their queue, and what they
/// need to run a chunk.
pub(crate) struct Shard {
    idx: u32,
    place: Arc<Placement>,
    nodes: Vec<Node>,
    sizes: SizeModel,
    /// Counters since they were last added to the run's.
    m: Metrics,
    events: u64,
    now: Ns,
    /// The running chunk ends before this (its horizon; between phases,
    /// the global event's time).
    wend: Ns,
    /// The queue of this shard's nodes' events (keys and slab slots).
    heap: BinaryHeap<Reverse<(Key, u32)>>,
    slab: Vec<Option<Ev>>,
    free: Vec<u32>,
    /// Events for other shards' nodes, by shard, and the earliest time
    /// among them.
    out: Vec<Vec<(Key, Ev)>>,
    /// The key of the last event this shard ran.
    last: Key,
    /// The lookahead from this shard to each ([`World::la`]'s row).
    la: Vec<Ns>,
    out_min: Ns,
    recs: Vec<Rec>,
}

/// CPU time of the calling thread, ns.
pub(crate) fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec as u64).wrapping_mul(1_000_000_000) + t.tv_nsec as u64
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn dur(ns: Ns) -> Duration {
    Duration::from_nanos(ns)
}

fn exp_ns(rng: &mut ChaCha8Rng, rate_per_s: f64) -> Ns {
    let u = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    (-u.ln() / rate_per_s * 1e9) as Ns
}

/// The simulation state.
pub(crate) struct Sim {
    pub(crate) now: Ns,
    pub(crate) end: Ns,
    pub(crate) warmup: Ns,
    pub(crate) p: Params,
    pub(crate) w: Arc<World>,
    shards: Arc<Vec<Mutex<Shard>>>,
    pub(crate) online: Vec<u32>,
    online_pos: Vec<u32>,
    offline: VecDeque<u32>,
    gheap: BinaryHeap<Reverse<(Ns, u64, GEv)>>,
    gseq: u64,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) m: Metrics,
    pub(crate) lookups: Vec<LookupRec>,
    worms: HashMap<WormId, usize>,
    awaiting_worm: HashMap<u32, Vec<usize>>,
    pub(crate) departures: Vec<Departure>,
    pub(crate) events: u64,
    /// Chunks of node events that started while another thread ran one.
    pub(crate) parallel_chunks: u64,
    /// Chunks run by the threads other than the main one.
    pub(crate) worker_chunks: u64,
    /// CPU time of the run on its critical path, ns: during the run, the
    /// measurement's extra (how much longer its slowest other thread ran
    /// than the main thread); at the end, the busiest thread's CPU time
    /// (the main thread's with that extra).
    pub(crate) critical_ns: u64,
    /// The main thread's CPU time when the run started, ns.
    started_cpu: u64,
    /// The initial joins whose global side is still to come: (time,
    /// node), in join order.
    pending_joins: VecDeque<(Ns, u32)>,
}

const NOT_ONLINE: u32 = u32::MAX;

impl Sim {
    pub(crate) fn new(p: Params, topo: Topology, sizes: SizeModel) -> Self {
        let total = topo.len() as usize;
        let end = p.duration.as_nanos() as Ns;
        let warmup = (p.warmup.as_nanos() as Ns).min(end / 2);
        let threads = p.threads.clamp(1, total.max(1)) as u32;
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ 0x6d73_6773_696d);
        let step = p.sample_interval.as_nanos() as Ns;
        let (place, la, nshards) = Placement::new(&topo, threads);
        let place = Arc::new(place);
        let shards = (0..nshards)
            .map(|k| {
                let count = place.shard.iter().filter(|&&x| x == k).count();
                Mutex::new(Shard {
                    idx: k,
                    place: Arc::clone(&place),
                    nodes: (0..count).map(|_| Node::new()).collect(),
                    sizes: sizes.clone(),
                    m: Metrics::new(end, step),
                    events: 0,
                    now: 0,
                    wend: 0,
                    heap: BinaryHeap::new(),
                    slab: Vec::new(),
                    free: Vec::new(),
                    out: (0..nshards).map(|_| Vec::new()).collect(),
                    la: la[k as usize].clone(),
                    last: (0, 0, 0),
                    out_min: Ns::MAX,
                    recs: Vec::new(),
                })
            })
            .collect();
        let shared_reports = SharedReports::new({
            let mut key = [0u8; 40];
            let mut h = blake3::Hasher::new();
            h.update(b"distsoc-sim shared hop-3 key");
            h.update(&p.seed.to_le_bytes());
            h.finalize_xof().fill(&mut key);
            key
        });
        let w = World {
            status: (0..total).map(|_| AtomicU64::new(0)).collect(),
            since: (0..total).map(|_| AtomicU64::new(0)).collect(),
            anchors: topo.anchor_list(),
            shared_reports,
            warmup,
            threads,
            place,
            la,
            p: p.clone(),
            topo,
        };
        let offline: VecDeque<u32> = (w.topo.initial..w.topo.len()).collect();
        let mut sim = Sim {
            now: 0,
            end,
            warmup,
            m: Metrics::new(end, step),
            p,
            w: Arc::new(w),
            shards: Arc::new(shards),
            online: Vec::new(),
            online_pos: vec![NOT_ONLINE; total],
            offline,
            gheap: BinaryHeap::new(),
            gseq: 0,
            lookups: Vec::new(),
            worms: HashMap::new(),
            awaiting_worm: HashMap::new(),
            departures: Vec::new(),
            events: 0,
            parallel_chunks: 0,
            worker_chunks: 0,
            critical_ns: 0,
            started_cpu: 0,
            pending_joins: VecDeque::new(),
            rng: ChaCha8Rng::seed_from_u64(0),
        };
        // Anchors at t = 0, everyone else over the join window. The times
        // are known now, so each join is a node event of its shard (the
        // threads need not stop for it): its liveness is set from its time
        // on, and the online list follows before each global event.
        let window = sim.p.join_window.as_nanos() as Ns;
        let mut joins = Vec::new();
        for i in 0..sim.w.topo.initial {
            let at = if i < sim.w.topo.anchors {
                0
            } else {
                rng.next_u64() % window.max(1)
            };
            sim.w.set_status(i, 0, true, at);
            // Key (time, node, 0): the node's own events count from 1.
            lock(&sim.shards[sim.w.shard_of(i)]).enqueue((at, i, 0), Ev::Join { node: i });
            joins.push((at, i));
        }
        joins.sort_unstable();
        sim.pending_joins = joins.into();
        let churn_rate = sim.churn_rate();
        if churn_rate > 0.0 {
            let t0 = window;
            let a = t0 + exp_ns(&mut rng, churn_rate);
            let b = t0 + exp_ns(&mut rng, churn_rate);
            sim.push_global(a, GEv::ChurnLeave);
            sim.push_global(b, GEv::ChurnJoin);
        }
        // Measurement lookups: uniform times after the warm-up.
        let span = end.saturating_sub(warmup + 30 * SEC).max(1);
        for _ in 0..sim.p.lookups {
            let at = warmup + rng.next_u64() % span;
            sim.push_global(at, GEv::Lookup);
        }
        sim.push_global(step.max(SEC), GEv::Sample);
        sim.push_global(warmup, GEv::Check);
        sim.rng = rng;
        sim
    }

    /// The report storage the meshes share (for its sizes).
    pub(crate) fn shared_reports(&self) -> SharedReports {
        self.w.shared_reports.clone()
    }

    /// Threads (shards) the run uses.
    pub(crate) fn threads(&self) -> usize {
        self.w.threads as usize
    }

    /// Departures per second (and as many joins).
    fn churn_rate(&self) -> f64 {
        self.p.churn / 100.0 * f64::from(self.w.topo.initial - self.w.topo.anchors) / 3600.0
    }

    fn push_global(&mut self, at: Ns, ev: GEv) {
        self.gseq += 1;
        self.gheap.push(Reverse((at.max(self.now), self.gseq, ev)));
    }

    /// Moves the shards' outboxes into the other shards' queues and
    /// applies their records.
    fn collect(&mut self, events: bool) {
        let mut recs = Vec::new();
        let mut moved: Vec<Vec<(Key, Ev)>> = Vec::new();
        for s in self.shards.iter() {
            let mut s = lock(s);
            if s.out_min != Ns::MAX {
                s.out_min = Ns::MAX;
                for v in s.out.iter_mut() {
                    if !v.is_empty() {
                        moved.push(std::mem::take(v));
                    }
                }
            }
            recs.append(&mut s.recs);
            if events {
                self.events += std::mem::take(&mut s.events);
            }
        }
        if !moved.is_empty() {
            let mut guards: Vec<_> = self.shards.iter().map(lock).collect();
            for v in moved {
                for (key, ev) in v {
                    let k = self.w.shard_of(ev.target());
                    guards[k].enqueue(key, ev);
                }
            }
        }
        if recs.is_empty() {
            return;
        }
        // Shards list their records in processing order: a stable sort by
        // (time, node) keeps each node's order.
        recs.sort_by_key(Rec::order);
        for r in recs {
            match r {
                Rec::Worm {
                    node,
                    worm,
                    first,
                    forward,
                    ..
                } => self.track_worm(node, &worm, first.as_ref(), forward),
                Rec::Done { node, id, done, .. } => {
                    if id >= LOOKUP_BASE && id < LOOKUP_BASE + self.lookups.len() as u64 {
                        let i = (id - LOOKUP_BASE) as usize;
                        self.lookups[i].done = Some(done);
                        if let Some(v) = self.awaiting_worm.get_mut(&node) {
                            v.retain(|&x| x != i);
                        }
                    }
                }
            }
        }
    }

    /// Runs `f` on node `i`'s shard at the current time (a global event:
    /// everything it emits goes to the queue), then collects.
    fn on_shard<R>(&mut self, i: u32, f: impl FnOnce(&mut Shard, &World) -> R) -> R {
        let r = {
            let w = &*self.w;
            let mut s = lock(&self.shards[w.shard_of(i)]);
            s.now = self.now;
            s.wend = self.now;
            f(&mut s, w)
        };
        self.collect(false);
        r
    }

    /// Reads node `i`.
    fn with_node<R>(&self, i: u32, f: impl FnOnce(&mut Node) -> R) -> R {
        let mut s = lock(&self.shards[self.w.shard_of(i)]);
        f(s.node_mut(i))
    }

    fn global(&mut self, ev: GEv) {
        match ev {
            GEv::ChurnLeave => {
                let rate = self.churn_rate();
                let next = self.now + exp_ns(&mut self.rng, rate);
                self.push_global(next, GEv::ChurnLeave);
                let movable = self.online.len() as u64;
                if movable > u64::from(self.w.topo.anchors) + 1 {
                    // Anchors never churn: redraw (bounded) if one is drawn.
                    for _ in 0..16 {
                        let i = self.online[(self.rng.next_u64() % movable) as usize];
                        if self.w.topo.profile[i as usize] != Profile::Anchor {
                            let crash = self.rng.next_u64().is_multiple_of(2);
                            self.depart(i, crash);
                            break;
                        }
                    }
                }
            }
            GEv::ChurnJoin => {
                let rate = self.churn_rate();
                let next = self.now + exp_ns(&mut self.rng, rate);
                self.push_global(next, GEv::ChurnJoin);
                if let Some(i) = self.offline.pop_front() {
                    self.join(i);
                }
            }
            GEv::Lookup => self.start_lookup(),
            GEv::Sample => {
                let step = self.p.sample_interval.as_nanos() as Ns;
                self.push_global(self.now + step.max(SEC), GEv::Sample);
                self.sample();
            }
            GEv::Check => {
                self.push_global(
                    self.now + self.p.check_interval.as_nanos() as Ns,
                    GEv::Check,
                );
                self.check_departures();
            }
        }
    }

    /// Adds the shards' counters to the run's.
    fn absorb_metrics(&mut self) {
        for s in self.shards.iter() {
            self.m.absorb(&mut lock(s).m);
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

    /// A node of the reserve (or one that left) joins: a global event.
    fn join(&mut self, i: u32) {
        if self.w.online(i, self.now) {
            return;
        }
        let inc = self.w.inc(i);
        let mesh = self.w.new_mesh(i, inc, self.now);
        self.w.set_status(i, inc, true, self.now);
        self.joined(i);
        let t = self.now;
        self.on_shard(i, |s, w| s.start_node(w, i, mesh, t));
    }

    /// The global side of a join: the online list and the count.
    fn joined(&mut self, i: u32) {
        self.online_pos[i as usize] = self.online.len() as u32;
        self.online.push(i);
        self.m.joins += 1;
    }

    /// The initial joins up to `t` (node events in their shards; the
    /// online list, which only global events read, follows here before
    /// each global event, in join order). One at `t` itself runs now, as
    /// a join before a global event of its own time did: its node event
    /// then finds it joined.
    fn initial_joins(&mut self, t: Ns) {
        while let Some(&(at, i)) = self.pending_joins.front() {
            if at > t {
                break;
            }
            self.pending_joins.pop_front();
            self.joined(i);
            if at == t {
                let mesh = self.w.new_mesh(i, 0, t);
                self.on_shard(i, |s, w| s.start_node(w, i, mesh, t));
            }
        }
    }

    fn close_window(&mut self, i: u32) {
        let (now, warmup) = (self.now, self.warmup);
        self.with_node(i, |n| {
            let from = n.online_since.max(warmup);
            if now > from {
                n.window_online += now - from;
            }
        });
    }

    /// A node leaves: cleanly (its peers learn after the one-way delay) or
    /// by crashing (its peers learn after the idle timeout).
    pub(crate) fn depart(&mut self, i: u32, crash: bool) {
        if !self.w.online(i, self.now) {
            return;
        }
        self.close_window(i);
        let track = self.now >= self.warmup
            && self.now + self.p.min_observation.as_nanos() as Ns <= self.end
            && self.departures.len() < self.p.departure_samples as usize;
        let crash_idle = self.p.crash_idle.as_nanos() as Ns;
        let now = self.now;
        let (counters, inc) = self.on_shard(i, |s, w| {
            let mut ends: Vec<(u32, End)> = std::mem::take(&mut s.node_mut(i).ends)
                .into_iter()
                .collect();
            // In peer order: the order of the pushes is part of the events'
            // keys.
            ends.sort_unstable_by_key(|&(p, _)| p);
            for (p, e) in ends {
                // Every end, open or not: a dial the peer accepted waits
                // for this node's handshake until the notice arrives.
                let delay = if crash {
                    crash_idle
                } else {
                    w.topo.rtt_ns(i, p) / 2
                };
                s.push(
                    i,
                    now + delay,
                    Ev::Down {
                        to: p,
                        from: i,
                        gen: e.gen,
                        inc: e.pinc,
                        local: false,
                    },
                );
            }
            let n = s.node_mut(i);
            n.pending.clear();
            n.inc += 1;
            n.timer_at = None;
            (n.mesh.take().map(|m| m.counters()), n.inc)
        });
        if let Some(c) = counters {
            self.m.add_counters(&c);
        }
        self.w.set_status(i, inc, false, self.now);
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
            let id = self.w.topo.ids[i as usize];
            let holders = self
                .holders_of(vec![(self.online.clone(), id)])
                .pop()
                .unwrap_or_default();
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
        self.with_node(j, |n| n.mesh.as_ref().is_some_and(|m| m.map().contains(id)))
    }

    fn start_lookup(&mut self) {
        let n = self.online.len() as u64;
        if n < 3 {
            return;
        }
        let origin = loop {
            let o = self.online[(self.rng.next_u64() % n) as usize];
            if self.w.topo.profile[o as usize] != Profile::Anchor {
                break o;
            }
        };
        let mut target = None;
        for _ in 0..self.p.target_draws {
            let t = self.online[(self.rng.next_u64() % n) as usize];
            let id = self.w.topo.ids[t as usize];
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
        self.on_shard(origin, |s, w| {
            s.feed(w, origin, InEvent::Command(Command::Lookup { target, id }));
        });
    }

    fn sample(&mut self) {
        self.absorb_metrics();
        let online = self.online.len();
        let nodes = std::mem::take(&mut self.online);
        let conns: Vec<u64> = self
            .on_nodes(&nodes, |_, n| {
                n.mesh.as_ref().map(|m| m.peers().count() as u64)
            })
            .into_iter()
            .flatten()
            .collect();
        let k = (self.p.map_samples as usize).min(online);
        let sampled: Vec<u32> = (0..k)
            .map(|s| {
                // An evenly spread, rotating sample of the online nodes.
                let pos = (s * online / k.max(1) + (self.m.samples.len() % 7)) % online.max(1);
                nodes[pos]
            })
            .collect();
        self.online = nodes;
        // The sampled maps' stats (a union rebuild each) on the run's
        // threads, a shard at a time.
        let stats: Vec<_> = self
            .on_nodes(&sampled, |_, n| n.mesh.as_mut().map(|m| m.map_stats()))
            .into_iter()
            .flatten()
            .collect();
        self.m.sample(self.now, online, &conns, &stats);
    }

    /// Adds the counters of every online node to the totals (at the end).
    pub(crate) fn final_counters(&mut self) {
        for s in self.shards.iter() {
            for n in &lock(s).nodes {
                if let Some(m) = &n.mesh {
                    self.m.add_counters(&m.counters());
                }
            }
        }
    }

    /// Every identity's online time and bytes inside the measurement
    /// window, by index.
    pub(crate) fn windows(&self) -> Vec<(Ns, u64)> {
        (0..self.w.topo.len())
            .map(|i| self.with_node(i, |n| (n.window_online, n.window_bytes)))
            .collect()
    }

    /// Map stats of up to `k` online nodes (evenly spread) and every online
    /// node's connection count, with its profile.
    pub(crate) fn final_maps(&mut self, k: usize) -> (Vec<ProfiledMap>, Vec<(Profile, u64)>) {
        let online = self.online.clone();
        let counts = self.on_nodes(&online, |_, n| {
            n.mesh.as_ref().map(|m| m.peers().count() as u64)
        });
        let k = k.min(online.len());
        let sampled: Vec<u32> = (0..k)
            .map(|s| online[s * online.len() / k.max(1)])
            .collect();
        let stats = self.on_nodes(&sampled, |_, n| n.mesh.as_mut().map(|m| m.map_stats()));
        let profile = |i: u32| self.w.topo.profile[i as usize];
        let conns = online
            .iter()
            .zip(counts)
            .filter_map(|(&i, c)| c.map(|c| (profile(i), c)))
            .collect();
        let maps = sampled
            .iter()
            .zip(stats)
            .filter_map(|(&i, s)| s.map(|s| (profile(i), s)))
            .collect();
        (maps, conns)
    }
}
