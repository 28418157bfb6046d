//! Unit and property tests of the mesh state on a fake clock: a tiny
//! network that delivers every output after a fixed latency.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::messages::common::SocketAddress;
use crate::messages::discovery::{Hop2Change, Hop2ChangeKind};

const LATENCY: Duration = Duration::from_millis(20);

fn nid(i: u32) -> NodeId {
    let mut b = *blake3::hash(&i.to_le_bytes()).as_bytes();
    b[31] = 0;
    NodeId(b)
}

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from((
        Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8),
        4000,
    ))
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Delivery {
    Up {
        to: NodeId,
        from: NodeId,
        outbound: bool,
    },
    Down {
        to: NodeId,
        from: NodeId,
    },
    Msg {
        to: NodeId,
        from: NodeId,
        msg: Box<MeshMessageOrd>,
    },
    Req {
        to: NodeId,
        from: NodeId,
        rid: ReqId,
        req: Box<MeshRequestOrd>,
    },
    Resp {
        to: NodeId,
        id: ReqId,
        ok: Option<Box<MeshResponseOrd>>,
    },
    DialFailed {
        to: NodeId,
        peer: NodeId,
    },
}

// Messages are not Ord; wrap them with a constant ordering (the queue
// orders by time and sequence number first, which are unique).
#[derive(Debug)]
struct MeshMessageOrd(MeshMessage);
#[derive(Debug)]
struct MeshRequestOrd(MeshRequest);
#[derive(Debug)]
struct MeshResponseOrd(MeshResponse);
macro_rules! const_ord {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, _: &Self) -> bool {
                true
            }
        }
        impl Eq for $t {}
        impl PartialOrd for $t {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for $t {
            fn cmp(&self, _: &Self) -> std::cmp::Ordering {
                std::cmp::Ordering::Equal
            }
        }
    };
}
const_ord!(MeshMessageOrd);
const_ord!(MeshRequestOrd);
const_ord!(MeshResponseOrd);

struct Net {
    now: Duration,
    nodes: BTreeMap<NodeId, Mesh>,
    index: HashMap<NodeId, u32>,
    links: BTreeSet<(NodeId, NodeId)>,
    queue: BinaryHeap<Reverse<(Duration, u64, Delivery)>>,
    seq: u64,
    pending: HashMap<ReqId, (NodeId, ReqId)>,
    next_rid: ReqId,
    done: Vec<LookupOutcome>,
    refused: Vec<Refusal>,
    /// Answers to requests the test handed in directly (`input`).
    answers: HashMap<ReqId, Result<MeshResponse, Refusal>>,
    pushes: Vec<(NodeId, NodeId, MeshMessage)>,
    /// WormRequests and WormQueries sent.
    worm_requests: usize,
    worm_queries: usize,
}

impl Net {
    fn new(n: u32, config: MeshConfig) -> Self {
        let mut net = Net {
            now: Duration::ZERO,
            nodes: BTreeMap::new(),
            index: HashMap::new(),
            links: BTreeSet::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            pending: HashMap::new(),
            next_rid: 1,
            done: Vec::new(),
            refused: Vec::new(),
            answers: HashMap::new(),
            pushes: Vec::new(),
            worm_requests: 0,
            worm_queries: 0,
        };
        for i in 0..n {
            let id = nid(i);
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            let mut m = Mesh::new(id, config.clone(), seed, Duration::ZERO);
            m.handle(
                Duration::ZERO,
                InEvent::Command(Command::SetOwnAddresses(vec![addr(i)])),
            );
            net.nodes.insert(id, m);
            net.index.insert(id, i);
        }
        net
    }

    fn push(&mut self, at: Duration, d: Delivery) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, d)));
    }

    fn link(&mut self, a: u32, b: u32) {
        let (a, b) = (nid(a), nid(b));
        self.connect(a, b);
    }

    fn connect(&mut self, a: NodeId, b: NodeId) {
        let key = if a.0 < b.0 { (a, b) } else { (b, a) };
        if a == b || !self.nodes.contains_key(&b) || !self.links.insert(key) {
            return;
        }
        let at = self.now + LATENCY;
        self.push(
            at,
            Delivery::Up {
                to: a,
                from: b,
                outbound: true,
            },
        );
        self.push(
            at,
            Delivery::Up {
                to: b,
                from: a,
                outbound: false,
            },
        );
    }

    fn unlink(&mut self, a: NodeId, b: NodeId) {
        let key = if a.0 < b.0 { (a, b) } else { (b, a) };
        if self.links.remove(&key) {
            let at = self.now + LATENCY;
            self.push(at, Delivery::Down { to: a, from: b });
            self.push(at, Delivery::Down { to: b, from: a });
        }
    }

    fn info(&self, id: &NodeId, outbound: bool) -> PeerInfo {
        let i = self.index[id];
        PeerInfo {
            addresses: vec![addr(i)],
            is_anchor: false,
            outbound,
        }
    }

    fn drain(&mut self, who: NodeId) {
        loop {
            let Some(ev) = self.nodes.get_mut(&who).and_then(Mesh::poll) else {
                return;
            };
            let at = self.now + LATENCY;
            match ev {
                OutEvent::Push { peer, msg } => {
                    self.pushes.push((who, peer, msg.clone()));
                    self.push(
                        at,
                        Delivery::Msg {
                            to: peer,
                            from: who,
                            msg: Box::new(MeshMessageOrd(msg)),
                        },
                    );
                }
                OutEvent::Request { peer, id, req, .. } => {
                    match &req {
                        MeshRequest::Worm(_) => self.worm_requests += 1,
                        MeshRequest::Query(_) => self.worm_queries += 1,
                        MeshRequest::Address(_) => {}
                    }
                    let rid = self.next_rid;
                    self.next_rid += 1;
                    self.pending.insert(rid, (who, id));
                    self.push(
                        at,
                        Delivery::Req {
                            to: peer,
                            from: who,
                            rid,
                            req: Box::new(MeshRequestOrd(req)),
                        },
                    );
                }
                OutEvent::Respond { id, result } => {
                    if !self.pending.contains_key(&id) {
                        self.answers.insert(id, result);
                        continue;
                    }
                    if let Some((origin, oid)) = self.pending.remove(&id) {
                        let ok = match result {
                            Ok(r) => Some(Box::new(MeshResponseOrd(r))),
                            Err(e) => {
                                self.refused.push(e);
                                None
                            }
                        };
                        self.push(
                            at,
                            Delivery::Resp {
                                to: origin,
                                id: oid,
                                ok,
                            },
                        );
                    }
                }
                OutEvent::Connect { peer, .. } => {
                    if self.nodes.contains_key(&peer) {
                        self.connect(who, peer);
                    } else {
                        self.push(at, Delivery::DialFailed { to: who, peer });
                    }
                }
                OutEvent::Disconnect { peer } => self.unlink(who, peer),
                OutEvent::Event(MeshEvent::LookupDone(o)) => self.done.push(o),
            }
        }
    }

    fn deliver(&mut self, d: Delivery) {
        let (to, ev) = match d {
            Delivery::Up { to, from, outbound } => {
                let info = self.info(&from, outbound);
                (to, InEvent::PeerUp { peer: from, info })
            }
            Delivery::Down { to, from } => (to, InEvent::PeerDown { peer: from }),
            Delivery::Msg { to, from, msg } => (
                to,
                InEvent::Message {
                    peer: from,
                    msg: msg.0,
                },
            ),
            Delivery::Req { to, from, rid, req } => (
                to,
                InEvent::Request {
                    peer: from,
                    id: rid,
                    req: req.0,
                },
            ),
            Delivery::Resp { to, id, ok } => {
                let result = match ok {
                    Some(r) => Ok(r.0),
                    None => Err(RequestFailed::Refused),
                };
                (to, InEvent::Response { id, result })
            }
            Delivery::DialFailed { to, peer } => (to, InEvent::DialFailed { peer }),
        };
        if let Some(m) = self.nodes.get_mut(&to) {
            m.handle(self.now, ev);
        }
        self.drain(to);
    }

    /// Run until `until`, delivering messages and firing timers in order.
    fn run_until(&mut self, until: Duration) {
        loop {
            let next_msg = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|(id, m)| m.poll_timeout().map(|t| (t, *id)))
                .min();
            let pick_msg = match (next_msg, next_timer) {
                (Some(a), Some((b, _))) => a <= b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let t = if pick_msg {
                next_msg.unwrap_or(until)
            } else {
                next_timer.map_or(until, |(t, _)| t)
            };
            if t > until {
                break;
            }
            self.now = t;
            if pick_msg {
                if let Some(Reverse((_, _, d))) = self.queue.pop() {
                    self.deliver(d);
                }
            } else if let Some((_, id)) = next_timer {
                if let Some(m) = self.nodes.get_mut(&id) {
                    m.handle(t, InEvent::Tick);
                }
                self.drain(id);
            }
        }
        self.now = until;
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Hand one input to node `i` at the current time (outputs stay queued).
    fn input(&mut self, i: u32, ev: InEvent) {
        let now = self.now;
        self.node(i).handle(now, ev);
    }

    fn node(&mut self, i: u32) -> &mut Mesh {
        let id = nid(i);
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("node {i}"))
    }

    fn lookup(&mut self, from: u32, target: NodeId, id: u64) {
        let who = nid(from);
        if let Some(m) = self.nodes.get_mut(&who) {
            m.handle(self.now, InEvent::Command(Command::Lookup { target, id }));
        }
        self.drain(who);
    }
}

/// Nodes that dial nobody on their own: the tests decide the links.
fn passive() -> MeshConfig {
    MeshConfig {
        social_slots: 0,
        wide_slots: 0,
        min_anchors: 0,
        // With no wide slot a re-evaluation closes every outbound link:
        // the first comes 10–30 minutes in (½–1½ periods), after the tests'
        // runs.
        wide_interval: Duration::from_secs(1200),
        ..MeshConfig::desktop()
    }
}

fn chain(n: u32) -> Net {
    let mut net = Net::new(n, passive());
    for i in 0..n - 1 {
        net.link(i, i + 1);
    }
    net
}

#[test]
fn a_chain_fills_three_hops_by_sync_and_diffs() {
    let mut net = chain(5);
    // Syncs at connect give hop 2 at once; hop 3 needs one diff round.
    net.run_for(Duration::from_secs(1));
    let (b, c) = (nid(1), nid(2));
    assert!(matches!(net.node(0).map().find(&b), Some(Found::Hop1(_))));
    net.run_for(Duration::from_secs(241));
    let d = nid(3);
    assert!(
        matches!(net.node(0).map().find(&c), Some(Found::Hop2 { reporter, addr: Some(_), .. }) if reporter == b)
    );
    assert!(
        matches!(net.node(0).map().find(&d), Some(Found::Hop3 { reporters }) if reporters == vec![b])
    );
    assert_eq!(
        net.node(0).map().find(&nid(4)),
        None,
        "4 hops away is not in a 3-hop map"
    );
    let stats = net.node(0).map_stats();
    assert_eq!((stats.hop1, stats.hop2), (1, 1));
}

#[test]
fn a_departed_node_leaves_every_view_within_three_diff_rounds() {
    let mut net = chain(4);
    net.run_for(Duration::from_secs(400));
    let d = nid(3);
    assert!(net.node(0).map().find(&d).is_some());
    net.unlink(nid(2), d);
    net.run_for(Duration::from_secs(3 * 120 + 1));
    assert_eq!(net.node(0).map().find(&d), None);
    assert_eq!(net.node(1).map().find(&d), None);
}

#[test]
fn lookups_name_the_tier_that_answered() {
    let mut net = chain(4);
    net.run_for(Duration::from_secs(400));
    let (b, c, d) = (nid(1), nid(2), nid(3));
    net.lookup(0, b, 1);
    net.lookup(0, c, 2);
    net.lookup(0, d, 3);
    net.run_for(Duration::from_secs(5));
    let tier = |id: u64| {
        net.done
            .iter()
            .find(|o| o.id == id)
            .and_then(|o| o.found.as_ref().map(|(p, t)| (p.node_id, *t)))
    };
    assert_eq!(tier(1), Some((b, Tier::Direct)));
    assert_eq!(tier(2), Some((c, Tier::Hop2)));
    assert_eq!(tier(3), Some((d, Tier::Hop3)));
    let hop3 = net.done.iter().find(|o| o.id == 3).map(|o| o.found.clone());
    assert_eq!(
        hop3.flatten().map(|(p, _)| p.addresses),
        Some(vec![SocketAddress(addr(3))])
    );
}

#[test]
fn the_worm_finds_a_node_beyond_the_map_and_ttl_bounds_it() {
    // A chain of 16. The worm moves one node per step along a chain, and
    // the relay at ttl 0 (node 5) checks four hops further: node 9 is the
    // farthest a ttl-5 worm finds, at the fifth forward step.
    let mut net = chain(16);
    net.run_for(Duration::from_secs(400));
    let far = nid(9);
    net.lookup(0, far, 7);
    net.run_for(Duration::from_secs(20));
    let o = net.done.iter().find(|o| o.id == 7).cloned();
    let o = o.unwrap_or_else(|| panic!("lookup did not finish"));
    assert_eq!(
        o.found.map(|(p, t)| (p.node_id, t)),
        Some((far, Tier::Worm))
    );
    // Node 10 is one hop beyond that.
    let too_far = nid(10);
    net.lookup(0, too_far, 8);
    net.run_for(Duration::from_secs(20));
    let o = net.done.iter().find(|o| o.id == 8).cloned();
    assert!(o.is_some_and(|o| o.found.is_none()));
    assert_eq!(
        net.nodes
            .values()
            .map(Mesh::tasks_in_progress)
            .sum::<usize>(),
        0,
        "every task finished"
    );
}

fn worm(ttl: u8, origin: NodeId, worm: u8) -> MeshRequest {
    MeshRequest::Worm(WormRequest {
        version: crate::limits::PROTOCOL_VERSION,
        worm_id: crate::ids::WormId([worm; 16]),
        targets: vec![nid(999)],
        post_ids: Vec::new(),
        ttl,
        originator: PeerAddress {
            node_id: origin,
            addresses: Vec::new(),
            is_anchor: false,
            last_seen_ms: 0,
        },
        visited: Vec::new(),
    })
}

#[test]
fn ttl_above_five_is_malformed_and_ttl_zero_is_never_forwarded() {
    let mut net = chain(3);
    net.run_for(Duration::from_secs(1));
    let (a, b) = (nid(0), nid(1));
    net.input(
        1,
        InEvent::Request {
            peer: a,
            id: 1,
            req: worm(6, a, 1),
        },
    );
    assert!(matches!(
        net.node(1).poll(),
        Some(OutEvent::Respond {
            id: 1,
            result: Err(Refusal::Malformed(_))
        })
    ));
    net.input(
        1,
        InEvent::Request {
            peer: a,
            id: 2,
            req: worm(0, a, 2),
        },
    );
    let mut forwarded = false;
    let mut t = net.now;
    for _ in 0..20 {
        while let Some(ev) = net.node(1).poll() {
            if let OutEvent::Request {
                req: MeshRequest::Worm(_),
                ..
            } = ev
            {
                forwarded = true;
            }
            if let OutEvent::Request { id, .. } = ev {
                net.node(1).handle(
                    t,
                    InEvent::Response {
                        id,
                        result: Err(RequestFailed::Failed),
                    },
                );
            }
        }
        t += Duration::from_millis(100);
        net.node(1).handle(t, InEvent::Tick);
    }
    assert!(!forwarded, "a ttl-0 worm is never forwarded");
    let _ = b;
}

#[test]
fn worm_requests_are_rate_limited_per_originator() {
    let mut net = chain(2);
    net.run_for(Duration::from_secs(1));
    let a = nid(0);
    let mut limited = 0;
    for i in 0..25u8 {
        net.input(
            1,
            InEvent::Request {
                peer: a,
                id: 100 + u64::from(i),
                req: worm(0, a, i),
            },
        );
        while let Some(ev) = net.node(1).poll() {
            if let OutEvent::Respond {
                result: Err(Refusal::RateLimited(wait)),
                ..
            } = ev
            {
                assert!(wait > Duration::ZERO);
                limited += 1;
            }
        }
    }
    assert_eq!(limited, 5, "20 per minute admitted, the rest refused");
}

#[test]
fn a_repeated_worm_id_is_answered_empty() {
    let mut net = chain(3);
    net.run_for(Duration::from_secs(300));
    let a = nid(0);
    let target_known = nid(2);
    let mut req = worm(1, a, 9);
    if let MeshRequest::Worm(w) = &mut req {
        w.targets = vec![target_known];
    }
    net.input(
        1,
        InEvent::Request {
            peer: a,
            id: 1,
            req: req.clone(),
        },
    );
    net.input(
        1,
        InEvent::Request {
            peer: a,
            id: 2,
            req,
        },
    );
    let mut answers = HashMap::new();
    while let Some(ev) = net.node(1).poll() {
        if let OutEvent::Respond {
            id,
            result: Ok(MeshResponse::Worm(r)),
        } = ev
        {
            answers.insert(id, r.hits.len());
        }
    }
    assert_eq!(answers.get(&1), Some(&1));
    assert_eq!(answers.get(&2), Some(&0));
}

#[test]
fn a_seq_gap_asks_for_a_fresh_map() {
    let mut net = chain(2);
    net.run_for(Duration::from_secs(1));
    let a = nid(0);
    let diff = |seq| {
        MeshMessage::RoutingDiff(RoutingDiff {
            version: crate::limits::PROTOCOL_VERSION,
            seq,
            hop1_changes: Vec::new(),
            hop2_changes: vec![Hop2Change {
                node_id: nid(500 + seq as u32),
                kind: Hop2ChangeKind::Added,
                is_anchor: false,
            }],
        })
    };
    net.input(
        1,
        InEvent::Message {
            peer: a,
            msg: diff(1),
        },
    );
    net.input(
        1,
        InEvent::Message {
            peer: a,
            msg: diff(1),
        },
    );
    assert!(net.node(1).map().find(&nid(501)).is_some());
    net.input(
        1,
        InEvent::Message {
            peer: a,
            msg: diff(3),
        },
    );
    assert!(
        net.node(1).map().find(&nid(503)).is_none(),
        "held until 2 arrives"
    );
    net.input(
        1,
        InEvent::Message {
            peer: a,
            msg: diff(2),
        },
    );
    assert!(
        net.node(1).map().find(&nid(503)).is_some(),
        "reordered diffs apply in order"
    );
    net.input(
        1,
        InEvent::Message {
            peer: a,
            msg: diff(7),
        },
    );
    net.pushes.clear();
    net.run_for(Duration::from_secs(121));
    assert!(net.pushes.iter().any(|(from, to, m)| *from == nid(1)
        && *to == a
        && matches!(m, MeshMessage::MapSyncRequest(_))));
    assert_eq!(net.node(1).counters().gaps, 1);
    // The fresh map arrives and replaces what was there.
    net.run_for(Duration::from_secs(1));
    assert!(net.node(1).map().find(&nid(501)).is_none());
}

#[test]
fn malformed_map_syncs_are_refused() {
    let sync = |index, count, hop3: Vec<NodeId>| {
        MeshMessage::InitialMapSync(InitialMapSync {
            version: 2,
            seq: 0,
            hop1: Vec::new(),
            hop2: Vec::new(),
            hop3,
            chunk_index: index,
            chunk_count: count,
        })
    };
    assert!(Mesh::check_message(&sync(0, 1, vec![])).is_ok());
    assert!(Mesh::check_message(&sync(1, 1, vec![])).is_err());
    assert!(Mesh::check_message(&sync(0, 0, vec![])).is_err());
    assert!(Mesh::check_message(&sync(0, 17, vec![])).is_err());
    // A non-empty hop3 is ignored, not refused.
    assert!(Mesh::check_message(&sync(0, 1, vec![nid(1)])).is_ok());
    assert!(matches!(
        Mesh::check_message(&sync(0, 17, vec![])),
        Err(Refusal::TooLarge(_))
    ));
}

#[test]
fn social_slots_fill_and_evict_only_with_hysteresis() {
    let config = MeshConfig {
        social_slots: 2,
        wide_slots: 0,
        min_anchors: 0,
        ..MeshConfig::desktop()
    };
    let mut net = Net::new(5, config);
    let cand = |i: u32, p: u8| SocialCandidate {
        id: nid(i),
        priority: p,
        addresses: vec![addr(i)],
    };
    net.node(0).handle(
        Duration::ZERO,
        InEvent::Command(Command::SetSocial(vec![cand(1, 1), cand(2, 1)])),
    );
    net.drain(nid(0));
    net.run_for(Duration::from_secs(30));
    let social: BTreeSet<NodeId> = net
        .node(0)
        .peers()
        .filter(|(_, c)| *c == SlotClass::Social)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(social, [nid(1), nid(2)].into_iter().collect());
    // A higher-priority candidate waits for the tenure of the incumbents.
    net.input(
        0,
        InEvent::Command(Command::SetSocial(vec![cand(1, 1), cand(2, 1), cand(3, 4)])),
    );
    net.drain(nid(0));
    net.run_for(Duration::from_secs(60));
    assert!(
        net.node(0).map().peer(&nid(3)).is_none(),
        "no eviction before min tenure"
    );
    net.run_for(Duration::from_secs(600));
    assert!(
        net.node(0).map().peer(&nid(3)).is_some(),
        "evicted after tenure"
    );
    assert_eq!(
        net.node(0)
            .peers()
            .filter(|(_, c)| *c == SlotClass::Social)
            .count(),
        2
    );
    // An equal-priority candidate never evicts.
    net.input(
        0,
        InEvent::Command(Command::SetSocial(vec![
            cand(1, 1),
            cand(2, 1),
            cand(3, 4),
            cand(4, 1),
        ])),
    );
    net.drain(nid(0));
    net.run_for(Duration::from_secs(1200));
    assert!(net.node(0).map().peer(&nid(4)).is_none());
}

#[test]
fn wide_slots_fill_from_the_map() {
    let config = MeshConfig {
        social_slots: 0,
        wide_slots: 3,
        min_anchors: 0,
        ..MeshConfig::desktop()
    };
    let mut net = Net::new(12, config);
    // A star around node 1: node 0 knows 1, and through it the others.
    for i in 2..12 {
        net.link(1, i);
    }
    net.link(0, 1);
    // The first re-evaluation comes within 1½ periods (15 min).
    net.run_for(Duration::from_secs(960));
    let wide = net.node(0).peers().filter(|(_, c)| c.is_wide()).count();
    assert!(wide >= 3, "wide peers chosen from hop 2: {wide}");
}

/// A chain `0 – a – b – c` of nodes picked from 64 so that `c` lies in
/// node 0's bucket `bucket` and `a`, `b` in shallower ones (but not
/// bucket 0); maps filled.
fn refresh_chain() -> (Net, [u32; 3], u32) {
    let me = nid(0);
    let cpl = |i: u32| route::common_prefix_len(&me.0, &nid(i).0);
    let c = (1..64).max_by_key(|i| (cpl(*i), *i)).unwrap();
    let bucket = cpl(c);
    let mut shallow = (1..64).filter(|i| (1..bucket).contains(&cpl(*i)));
    let (a, b) = (shallow.next().unwrap(), shallow.next().unwrap());
    let mut net = Net::new(64, passive());
    net.link(0, a);
    net.link(a, b);
    net.link(b, c);
    net.run_for(Duration::from_secs(400));
    (net, [a, b, c], bucket)
}

#[test]
fn a_bucket_refresh_ends_at_the_fan_out_that_names_a_node_of_its_bucket() {
    let (mut net, [_, _, c], bucket) = refresh_chain();
    // Node c is 3 hops out (a fingerprint in node 0's map): node a's
    // fan-out answer names it as the probe's closest.
    let probe = route::bucket_probe(&nid(0), bucket, [7; 32]);
    let id = slots::REFRESH_LOOKUP_BASE + u64::from(bucket);
    net.lookup(0, probe, id);
    net.run_for(Duration::from_secs(20));
    let counters = net.node(0).counters();
    assert_eq!(
        (
            counters.refreshes_found,
            counters.refreshes_found_unforwarded
        ),
        (1, 1)
    );
    assert_eq!(net.worm_requests, 0, "not forwarded");
    assert_eq!(net.worm_queries, 1, "node 0's fan-out: its one peer");
    assert!(net.node(0).slots.is_known(&nid(c)), "a wide candidate");
}

/// Node 0 runs one bucket refresh as if its deepest wide peer were
/// `deep`; returns its counters once the network has settled (20 s).
fn refresh_and_settle(net: &mut Net, deep: NodeId) -> Counters {
    let now = net.now;
    net.node(0).bucket_refresh(now, &[deep]);
    net.drain(nid(0));
    net.run_for(Duration::from_secs(20));
    net.node(0).counters()
}

#[test]
fn a_bucket_found_empty_is_asked_again_by_fan_out_only() {
    let (mut net, [a, ..], _) = refresh_chain();
    // Bucket 200 is empty: the first ask forwards the worm to the end of
    // the chain; the next ask of the same bucket is node 0's fan-out only.
    let mut deep = nid(0);
    deep.0[24] ^= 0x01; // common prefix 199: the next bucket asked is 200
    let counters = refresh_and_settle(&mut net, deep);
    assert_eq!((counters.refreshes, counters.refreshes_missed), (1, 1));
    assert!(net.worm_requests >= 1, "the first ask is a full worm");
    let (requests, queries) = (net.worm_requests, net.worm_queries);
    let counters = refresh_and_settle(&mut net, deep);
    assert_eq!((counters.refreshes, counters.refreshes_missed), (2, 2));
    assert_eq!(net.worm_requests, requests, "not forwarded");
    assert_eq!(net.worm_queries, queries + 1, "to node {a} only");
    // A node of the map (peer a) in the bucket asked for: the answer,
    // without a lookup.
    let now = net.now;
    let b = route::common_prefix_len(&nid(0).0, &nid(a).0);
    let mut current = nid(0);
    current.0[((b - 1) / 8) as usize] ^= 0x80 >> ((b - 1) % 8);
    net.node(0).bucket_refresh(now, &[current]);
    net.drain(nid(0));
    let counters = net.node(0).counters();
    assert_eq!(
        (counters.refreshes, counters.refreshes_found_unforwarded),
        (3, 1)
    );
    assert_eq!(net.worm_queries, queries + 1, "no lookup");
}

// ---- properties ---------------------------------------------------------

fn view_of(m: &Mesh) -> (BTreeSet<NodeId>, BTreeSet<NodeId>) {
    let h1 = m.map.hop1().map(|(id, _)| *id).collect();
    let h2 = m.map.hop2_view().map(|(id, _)| id).collect();
    (h1, h2)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Applying a node's diffs in order reproduces its view at every peer,
    /// whatever sequence of links came and went; and no diff carries more
    /// changes than the view had.
    #[test]
    fn diffs_reproduce_the_senders_view(ops in proptest::collection::vec((0u32..8, 0u32..8, any::<bool>()), 1..40)) {
        let mut net = Net::new(8, passive());
        for (a, b, up) in ops {
            if up { net.link(a, b) } else { net.unlink(nid(a), nid(b)) }
            net.run_for(Duration::from_secs(7));
        }
        // Two diff rounds with no change: every peer is up to date.
        net.run_for(Duration::from_secs(250));
        let ids: Vec<NodeId> = net.nodes.keys().copied().collect();
        for p in &ids {
            let (h1, h2) = view_of(&net.nodes[p]);
            for q in &h1 {
                let m = &net.nodes[q];
                let report = m.map.reports.get(p);
                prop_assert!(report.is_some(), "peer report missing");
                let report = report.map(|r| (r.hop1.iter().map(|(x, _)| *x).filter(|x| x != q).collect::<BTreeSet<_>>(), r.hop2.clone()));
                if let Some((rh1, rh2)) = report {
                    let want: BTreeSet<NodeId> = h1.iter().copied().filter(|x| x != q).collect();
                    prop_assert_eq!(rh1, want);
                    let fps: BTreeSet<u32> = h2.iter().filter(|x| *x != q).map(|x| m.map.fingerprint.fp(x)).collect();
                    let got: BTreeSet<u32> = rh2.iter().collect();
                    prop_assert_eq!(got, fps);
                }
            }
        }
        // Nothing amplified: each change of a node's own view reaches each
        // of its (at most 7) peers at most once; received diffs add nothing.
        for m in net.nodes.values() {
            let c = m.counters();
            prop_assert!(c.diff_changes_sent <= c.view_changes * 7, "{:?}", c);
        }
    }
}

#[test]
fn address_requests_resolve_recursively_up_to_their_depth() {
    let mut net = chain(5);
    net.run_for(Duration::from_secs(400));
    // Node 4 is at hop 3 of node 1: depth 2 walks 1 → 2 → 3, which knows it.
    let ask = |depth| {
        MeshRequest::Address(AddressRequest {
            version: crate::limits::PROTOCOL_VERSION,
            targets: vec![nid(4), nid(77)],
            depth,
        })
    };
    net.input(
        1,
        InEvent::Request {
            peer: nid(0),
            id: 9001,
            req: ask(2),
        },
    );
    net.drain(nid(1));
    net.input(
        1,
        InEvent::Request {
            peer: nid(0),
            id: 9002,
            req: ask(0),
        },
    );
    net.drain(nid(1));
    net.run_for(Duration::from_secs(3));
    let entries = |id| match net.answers.get(&id) {
        Some(Ok(MeshResponse::Address(r))) => r.entries.clone(),
        other => panic!("no address answer: {other:?}"),
    };
    let deep = entries(9001);
    assert_eq!(deep.len(), 2, "one entry per target, in order");
    assert_eq!(
        deep[0].peer.as_ref().map(|p| p.addresses.clone()),
        Some(vec![SocketAddress(addr(4))])
    );
    assert!(
        deep[1].peer.is_none() && deep[1].referral.is_none(),
        "unknown: not found, no referral"
    );
    let local = entries(9002);
    assert!(local[0].peer.is_none());
    assert_eq!(
        local[0].referral,
        Some(nid(2)),
        "depth 0 names the reporting peer"
    );
}

#[test]
fn pushes_are_checked_before_they_are_applied() {
    let mut net = chain(2);
    net.run_for(Duration::from_secs(1));
    let a = nid(0);
    let chunk = |index, count, hop2: usize| {
        MeshMessage::InitialMapSync(InitialMapSync {
            version: 2,
            seq: 5,
            hop1: Vec::new(),
            hop2: (0..hop2 as u32)
                .map(|i| crate::messages::discovery::Hop2Entry {
                    node_id: nid(10_000 + i),
                    is_anchor: false,
                })
                .collect(),
            hop3: Vec::new(),
            chunk_index: index,
            chunk_count: count,
        })
    };
    let now = net.now;
    let m = net.node(1);
    assert!(m.check_push(now, &a, &chunk(0, 3, 10)).is_ok());
    m.handle(
        now,
        InEvent::Message {
            peer: a,
            msg: chunk(0, 3, 10),
        },
    );
    assert!(
        matches!(
            m.check_push(now, &a, &chunk(1, 4, 0)),
            Err(Refusal::Malformed(_))
        ),
        "chunkCount differs within one map"
    );
    m.handle(
        now,
        InEvent::Message {
            peer: a,
            msg: chunk(1, 3, 4096),
        },
    );
    let big = chunk(2, 3, 65_536 - 4096);
    assert!(
        matches!(m.check_push(now, &a, &big), Err(Refusal::TooLarge(_))),
        "over 65,536 hop-2 entries in one map"
    );
    // MapSyncRequest: served once per minute.
    let req = MeshMessage::MapSyncRequest(crate::messages::discovery::MapSyncRequest {
        version: 2,
        last_seq: 0,
    });
    assert!(m.check_push(now, &a, &req).is_ok());
    m.handle(
        now,
        InEvent::Message {
            peer: a,
            msg: req.clone(),
        },
    );
    assert!(
        matches!(m.check_push(now + Duration::from_secs(30), &a, &req), Err(Refusal::RateLimited(w)) if w == Duration::from_secs(30))
    );
    assert!(m
        .check_push(now + Duration::from_secs(60), &a, &req)
        .is_ok());
}

#[test]
fn held_diffs_become_a_gap_after_ten_seconds_and_a_stalled_map_after_sixty() {
    let mut net = chain(2);
    net.run_for(Duration::from_secs(1));
    let a = nid(0);
    let diff = |seq| {
        MeshMessage::RoutingDiff(RoutingDiff {
            version: 2,
            seq,
            hop1_changes: Vec::new(),
            hop2_changes: Vec::new(),
        })
    };
    net.input(
        1,
        InEvent::Message {
            peer: a,
            msg: diff(3),
        },
    );
    net.pushes.clear();
    net.run_for(Duration::from_secs(9));
    assert_eq!(net.node(1).counters().gaps, 0, "held, not yet a gap");
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.node(1).counters().gaps, 1);
    assert!(net
        .pushes
        .iter()
        .any(|(f, t, m)| *f == nid(1) && *t == a && matches!(m, MeshMessage::MapSyncRequest(_))));
    // The fresh map completes: no further gap; a map that never completes is one.
    net.run_for(Duration::from_secs(5));
    let partial = MeshMessage::InitialMapSync(InitialMapSync {
        version: 2,
        seq: 40,
        hop1: Vec::new(),
        hop2: Vec::new(),
        hop3: Vec::new(),
        chunk_index: 0,
        chunk_count: 2,
    });
    net.input(
        1,
        InEvent::Message {
            peer: a,
            msg: partial,
        },
    );
    net.run_for(Duration::from_secs(59));
    assert_eq!(net.node(1).counters().gaps, 1);
    net.run_for(Duration::from_secs(2));
    assert_eq!(
        net.node(1).counters().gaps,
        2,
        "a staging idle for 60 s is dropped as a gap"
    );
}

#[test]
fn an_anchor_hands_out_only_verified_addresses() {
    let config = MeshConfig {
        verified_only: true,
        ..passive()
    };
    let mut net = Net::new(3, config);
    net.link(0, 1);
    net.link(1, 2);
    net.run_for(Duration::from_secs(250));
    // Node 0 knows 2 at hop 2 with the address node 1 reported.
    let ask = |t| {
        MeshRequest::Address(AddressRequest {
            version: crate::limits::PROTOCOL_VERSION,
            targets: vec![nid(t)],
            depth: 0,
        })
    };
    net.input(
        0,
        InEvent::Request {
            peer: nid(1),
            id: 7001,
            req: ask(2),
        },
    );
    net.drain(nid(0));
    let entry = |net: &Net, id| match net.answers.get(&id) {
        Some(Ok(MeshResponse::Address(r))) => r.entries[0].clone(),
        other => panic!("no answer: {other:?}"),
    };
    let e = entry(&net, 7001);
    assert!(e.peer.is_none(), "a second-hand address is not repeated");
    assert_eq!(e.referral, Some(nid(1)));
    // Its own peer: only what the runtime verified.
    net.input(
        0,
        InEvent::PeerAddresses {
            peer: nid(1),
            addresses: Vec::new(),
        },
    );
    net.input(
        0,
        InEvent::Request {
            peer: nid(1),
            id: 7002,
            req: ask(1),
        },
    );
    net.drain(nid(0));
    assert!(
        entry(&net, 7002).peer.is_none(),
        "not verified: not handed out"
    );
    net.input(
        0,
        InEvent::PeerAddresses {
            peer: nid(1),
            addresses: vec![addr(1)],
        },
    );
    net.input(
        0,
        InEvent::Request {
            peer: nid(1),
            id: 7003,
            req: ask(1),
        },
    );
    net.drain(nid(0));
    assert_eq!(
        entry(&net, 7003).peer.map(|p| p.addresses),
        Some(vec![SocketAddress(addr(1))])
    );
}

#[test]
fn a_peer_that_closes_at_once_is_redialled_with_growing_backoff() {
    let config = MeshConfig {
        social_slots: 1,
        wide_slots: 0,
        min_anchors: 0,
        ..MeshConfig::desktop()
    };
    let mut net = Net::new(2, config);
    // Node 1 is full: it closes every connection as soon as it is up.
    net.node(1).config.max_connections = 0;
    let cand = SocialCandidate {
        id: nid(1),
        priority: 4,
        addresses: vec![addr(1)],
    };
    net.input(0, InEvent::Command(Command::SetSocial(vec![cand])));
    net.drain(nid(0));
    let mut dials = 0;
    let mut t = 0;
    while t < 120 {
        net.run_for(Duration::from_secs(1));
        t += 1;
        dials += net
            .pushes
            .iter()
            .filter(|(f, _, m)| *f == nid(0) && matches!(m, MeshMessage::InitialMapSync(_)))
            .count();
        net.pushes.clear();
    }
    // 1 + 2 + 4 + 8 + 16 + 32 + 64 s: at most 7 attempts in two minutes, not 120.
    assert!((3..=8).contains(&dials), "{dials} connections in 120 s");
}

/// The net changes since `pos` as `send_diffs` computed them before the
/// journal index: one pass per position with a set of keys seen.
fn changes_by_scan(
    m: &Mesh,
    pos: u64,
) -> (Vec<crate::messages::discovery::Hop1Change>, Vec<Hop2Change>) {
    use crate::messages::discovery::{Hop1Change, Hop1ChangeKind};
    use map::Layer;
    let start = (pos - m.map.journal_base) as usize;
    let mut seen = BTreeSet::new();
    let (mut h1, mut h2) = (Vec::new(), Vec::new());
    for ev in &m.map.journal[start..] {
        if !seen.insert((ev.layer == Layer::Hop1, ev.id)) {
            continue;
        }
        let now = m.map.view_has(ev.layer, &ev.id);
        match ev.layer {
            Layer::Hop1 => {
                let kind = match (ev.present_before, now) {
                    (false, true) => Hop1ChangeKind::Added,
                    (true, true) => Hop1ChangeKind::AddressChanged,
                    (true, false) => Hop1ChangeKind::Removed,
                    (false, false) => continue,
                };
                let p = m.map.peer(&ev.id);
                h1.push(Hop1Change {
                    node_id: ev.id,
                    kind,
                    addresses: p
                        .map(|p| p.addresses.iter().map(|a| SocketAddress(*a)).collect())
                        .unwrap_or_default(),
                    is_anchor: p.is_some_and(|p| p.is_anchor),
                    is_wide: p.is_some_and(|p| p.class.is_wide()),
                });
            }
            Layer::Hop2 => {
                let kind = match (ev.present_before, now) {
                    (false, true) => Hop2ChangeKind::Added,
                    (true, false) => Hop2ChangeKind::Removed,
                    _ => continue,
                };
                h2.push(Hop2Change {
                    node_id: ev.id,
                    kind,
                    is_anchor: m.map.hop2_is_anchor(&ev.id),
                });
            }
        }
    }
    (h1, h2)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The journal index gives, for every position a peer may be at, the
    /// same net changes in the same order as a scan from that position.
    #[test]
    fn the_journal_index_gives_the_changes_a_scan_gives(
        ops in proptest::collection::vec((0u32..5, 0u32..6, 0u32..10, any::<bool>()), 1..80)
    ) {
        let mut m = Mesh::new(nid(1000), passive(), [7; 32], Duration::ZERO);
        let mut positions = vec![m.map.journal_end()];
        for (kind, a, b, flag) in ops {
            let (pa, x) = (nid(a), nid(b + 10));
            match kind {
                0 => m.map.set_hop1(pa, Hop1Peer {
                    addresses: vec![addr(a + if flag { 100 } else { 0 })],
                    is_anchor: flag,
                    class: if flag { SlotClass::Wide } else { SlotClass::Social },
                }),
                1 => m.map.remove_hop1(&pa),
                2 => {
                    let rep = flag.then(|| map::Reported::new(Some(addr(b)), b % 3 == 0));
                    m.map.apply_hop1(&pa, &[(x, rep)]);
                }
                3 => {
                    // A hop-1 peer reported as hop 2 too.
                    m.map.apply_hop1(&pa, &[(nid(b % 6), flag.then(|| map::Reported::new(None, false)))]);
                }
                _ => positions.push(m.map.journal_end()),
            }
        }
        positions.push(m.map.journal_end());
        let min = positions.iter().copied().min().unwrap();
        let index = m.journal_index(min);
        for pos in positions {
            prop_assert_eq!(index.changes_since(pos), changes_by_scan(&m, pos));
        }
    }
}

#[test]
fn a_large_view_goes_out_in_chunks_of_4096_in_id_order() {
    use crate::messages::discovery::Hop1Entry;
    let t0 = Duration::ZERO;
    let mut m = Mesh::new(nid(1), MeshConfig::desktop(), [9; 32], t0);
    let info = |outbound| PeerInfo {
        addresses: vec![],
        is_anchor: false,
        outbound,
    };
    // Five peers report 1,000 nodes each (some shared): hop 2 > 4,096.
    for p in 0..5u32 {
        let peer = nid(10 + p);
        m.handle(
            t0,
            InEvent::PeerUp {
                peer,
                info: info(true),
            },
        );
        let hop1 = (0..1000u32)
            .map(|i| Hop1Entry {
                peer: PeerAddress {
                    node_id: nid(1000 + p * 900 + i),
                    addresses: vec![],
                    is_anchor: i % 7 == 0,
                    last_seen_ms: 0,
                },
                is_wide: false,
            })
            .collect();
        let msg = MeshMessage::InitialMapSync(InitialMapSync {
            version: 2,
            seq: 0,
            hop1,
            hop2: Vec::new(),
            hop3: Vec::new(),
            chunk_index: 0,
            chunk_count: 1,
        });
        m.handle(t0, InEvent::Message { peer, msg });
    }
    while m.poll().is_some() {}
    let want: Vec<(NodeId, bool)> = m.map().hop2_view().collect();
    assert_eq!(want.len(), 4600);
    let c = nid(99);
    m.handle(
        t0,
        InEvent::PeerUp {
            peer: c,
            info: info(false),
        },
    );
    let mut chunks = Vec::new();
    while let Some(ev) = m.poll() {
        if let OutEvent::Push {
            peer,
            msg: MeshMessage::InitialMapSync(s),
        } = ev
        {
            assert_eq!(peer, c);
            chunks.push(s);
        }
    }
    assert_eq!(chunks.len(), 2);
    assert_eq!(
        chunks.iter().map(|s| s.hop2.len()).collect::<Vec<_>>(),
        [4096, 504]
    );
    assert!(chunks
        .iter()
        .enumerate()
        .all(|(i, s)| s.chunk_index == i as u32 && s.chunk_count == 2));
    assert_eq!(chunks[0].hop1.len(), 6);
    assert!(chunks[1].hop1.is_empty());
    let got: Vec<(NodeId, bool)> = chunks
        .iter()
        .flat_map(|s| s.hop2.iter().map(|e| (e.node_id, e.is_anchor)))
        .collect();
    assert_eq!(got, want);
}
