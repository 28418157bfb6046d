//! Lookups, the worm and address resolution (`schema/README.md` §13.5,
//! §13.7): one task per thing this node is working on (a lookup of its
//! own, a WormRequest, WormQuery or AddressRequest it serves), each with the
//! requests it is waiting for and a deadline.

use std::collections::HashMap;
use std::time::Duration;

use super::limiter::Kind;
use super::map::Found;
use super::route::{self, Hop};
use super::{
    LookupOutcome, Mesh, MeshEvent, MeshRequest, MeshResponse, OutEvent, Refusal, ReqId,
    RequestFailed, Tier, Timer,
};
use crate::ids::{NodeId, WormId};
use crate::limits::PROTOCOL_VERSION;
use crate::messages::common::{PeerAddress, SocketAddress};
use crate::messages::discovery::{
    AddressEntry, AddressRequest, AddressResponse, WormHit, WormQuery, WormRequest, WormResponse,
};

/// The most forwarding hops a worm may have left (the wire's bound).
pub const MAX_WORM_TTL: u8 = 5;
/// Most deepest `depth` of an AddressRequest.
pub const MAX_ADDRESS_DEPTH: u8 = 2;
/// Most targets of one AddressRequest resolved on the requester's behalf.
pub const MAX_RECURSIVE_TARGETS: usize = 8;
/// How long a worm id is remembered (a repeat is answered empty).
pub const WORM_SEEN_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Owner {
    /// Serving the runtime's request `ReqId`.
    Remote(ReqId),
    /// This node's own lookup.
    Lookup {
        id: u64,
        started: Duration,
        tier: Tier,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// Resolving entries `slots` of an address task, or target `slots[0]`
    /// of a worm.
    Resolve(Vec<usize>),
    Query,
    Forward,
}

#[derive(Debug)]
enum Body {
    Address(Vec<AddressEntry>),
    Worm(Box<WormState>),
}

#[derive(Debug)]
struct WormState {
    worm_id: WormId,
    targets: Vec<NodeId>,
    ttl: u8,
    visited: Vec<NodeId>,
    from: Option<NodeId>,
    originator: PeerAddress,
    hits: Vec<WormHit>,
    closest: Option<PeerAddress>,
    /// (peer, the `closest` its fan-out answer named).
    peer_closest: Vec<Hop>,
    query_only: bool,
    forwarded: bool,
}

#[derive(Debug)]
pub(crate) struct Task {
    owner: Owner,
    deadline: Duration,
    pending: usize,
    messages: u32,
    body: Body,
}

/// The tasks of one node and the requests they wait for.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    tasks: HashMap<u64, Task>,
    next: u64,
    outgoing: HashMap<ReqId, (u64, Purpose, NodeId)>,
    seen: HashMap<WormId, Duration>,
}

impl Tasks {
    pub(crate) fn purge_seen(&mut self, now: Duration) {
        self.seen.retain(|_, t| *t > now);
    }

    /// Tasks in progress (for tests and the simulator).
    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }
}

/// How this node can answer for one target from its own map.
enum Local {
    Known(PeerAddress, u8),
    Ask { peer: NodeId, depth: u8, hops: u8 },
    Unknown,
}

fn address_entry(node_id: NodeId) -> AddressEntry {
    AddressEntry {
        node_id,
        peer: None,
        referral: None,
    }
}

impl Mesh {
    fn own_address(&self) -> PeerAddress {
        PeerAddress {
            node_id: self.me,
            addresses: self
                .own_addresses
                .iter()
                .map(|a| SocketAddress(*a))
                .collect(),
            is_anchor: self.config.is_anchor,
            last_seen_ms: 0,
        }
    }

    fn local(&self, target: &NodeId) -> Local {
        // Of a hop-3 answer only the first reporter is asked.
        match self.map.find_first(target) {
            Some(Found::Me) if !self.own_addresses.is_empty() => {
                Local::Known(self.own_address(), 0)
            }
            Some(Found::Hop1(p)) if !p.addresses.is_empty() => {
                let mut pa = self
                    .map
                    .peer_address(target)
                    .unwrap_or_else(|| self.own_address());
                pa.node_id = *target;
                Local::Known(pa, 1)
            }
            // An anchor hands out only addresses it verified (§12): a
            // second-hand hop-2 address is asked for, not repeated.
            Some(Found::Hop2 {
                addr: Some(a),
                is_anchor,
                ..
            }) if !self.config.verified_only => Local::Known(
                PeerAddress {
                    node_id: *target,
                    addresses: vec![SocketAddress(a)],
                    is_anchor,
                    last_seen_ms: 0,
                },
                2,
            ),
            Some(Found::Hop2 { reporter, .. }) => Local::Ask {
                peer: reporter,
                depth: 0,
                hops: 2,
            },
            Some(Found::Hop3 { reporters }) => match reporters.first() {
                Some(p) => Local::Ask {
                    peer: *p,
                    depth: 1,
                    hops: 3,
                },
                None => Local::Unknown,
            },
            _ => Local::Unknown,
        }
    }

    fn new_task(&mut self, now: Duration, owner: Owner, wait: Duration, body: Body) -> u64 {
        let id = self.tasks.next;
        self.tasks.next += 1;
        let deadline = now + wait;
        self.tasks.tasks.insert(
            id,
            Task {
                owner,
                deadline,
                pending: 0,
                messages: 0,
                body,
            },
        );
        self.timers.insert((deadline, Timer::Task(id)));
        id
    }

    fn send(
        &mut self,
        task: u64,
        peer: NodeId,
        req: MeshRequest,
        timeout: Duration,
        purpose: Purpose,
    ) {
        let id = self.next_id();
        if let Some(t) = self.tasks.tasks.get_mut(&task) {
            t.pending += 1;
            t.messages += 1;
        }
        self.tasks.outgoing.insert(id, (task, purpose, peer));
        self.out.push_back(OutEvent::Request {
            peer,
            id,
            req,
            timeout,
        });
    }

    fn ask_address(&mut self, task: u64, peer: NodeId, targets: Vec<(usize, NodeId)>, depth: u8) {
        // A requester waits (depth + 1) × 500 ms (§13.7).
        let timeout = self.config.address_wait * (u32::from(depth) + 1);
        let (slots, targets): (Vec<usize>, Vec<NodeId>) = targets.into_iter().unzip();
        let req = MeshRequest::Address(AddressRequest {
            version: PROTOCOL_VERSION,
            targets,
            depth,
        });
        self.send(task, peer, req, timeout, Purpose::Resolve(slots));
    }

    // ---- lookups -------------------------------------------------------

    pub(crate) fn start_lookup(&mut self, now: Duration, target: NodeId, id: u64) {
        let ttl = self.config.worm_ttl;
        self.start_lookup_with(now, target, id, ttl);
    }

    /// A lookup whose worm, if one is needed, starts with `ttl` (at most 5).
    pub(crate) fn start_lookup_with(&mut self, now: Duration, target: NodeId, id: u64, ttl: u8) {
        let owner = |tier| Owner::Lookup {
            id,
            started: now,
            tier,
        };
        match self.local(&target) {
            Local::Known(pa, hops) => {
                let tier = if hops <= 1 { Tier::Direct } else { Tier::Hop2 };
                self.emit_lookup(now, id, now, target, Some((pa, tier)), hops, 0, None, false);
            }
            Local::Ask { peer, depth, hops } => {
                let tier = if hops == 2 { Tier::Hop2 } else { Tier::Hop3 };
                let wait = self.config.address_wait * (u32::from(depth) + 1);
                let task = self.new_task(
                    now,
                    owner(tier),
                    wait,
                    Body::Address(vec![address_entry(target)]),
                );
                self.ask_address(task, peer, vec![(0, target)], depth);
            }
            Local::Unknown => self.start_worm_lookup(now, target, id, now, 0, ttl),
        }
    }

    fn start_worm_lookup(
        &mut self,
        now: Duration,
        target: NodeId,
        id: u64,
        started: Duration,
        messages: u32,
        ttl: u8,
    ) {
        let mut worm_id = [0u8; 16];
        worm_id[..8].copy_from_slice(&self.random_u64().to_le_bytes());
        worm_id[8..].copy_from_slice(&self.random_u64().to_le_bytes());
        let req = WormRequest {
            version: PROTOCOL_VERSION,
            worm_id: WormId(worm_id),
            targets: vec![target],
            post_ids: Vec::new(),
            ttl: ttl.min(MAX_WORM_TTL),
            originator: self.own_address(),
            visited: Vec::new(),
        };
        self.tasks.seen.insert(req.worm_id, now + WORM_SEEN_FOR);
        let task = self.start_worm(
            now,
            Owner::Lookup {
                id,
                started,
                tier: Tier::Worm,
            },
            None,
            req,
            false,
        );
        if let Some(t) = self.tasks.tasks.get_mut(&task) {
            t.messages += messages;
        }
        self.maybe_finish(now, task);
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_lookup(
        &mut self,
        now: Duration,
        id: u64,
        started: Duration,
        target: NodeId,
        found: Option<(PeerAddress, Tier)>,
        hops: u8,
        messages: u32,
        closest: Option<PeerAddress>,
        forwarded: bool,
    ) {
        if id >= super::slots::REFRESH_LOOKUP_BASE {
            // A bucket refresh of the slot logic: its answer is a candidate.
            let answer = closest.as_ref().or(found.as_ref().map(|(p, _)| p)).cloned();
            self.refresh_done(now, id, answer.as_ref(), forwarded);
            return;
        }
        self.out
            .push_back(OutEvent::Event(MeshEvent::LookupDone(LookupOutcome {
                id,
                target,
                found,
                hops,
                messages,
                elapsed: now.saturating_sub(started),
                closest,
            })));
    }

    // ---- serving requests ----------------------------------------------

    pub(crate) fn on_request(&mut self, now: Duration, peer: NodeId, id: ReqId, req: MeshRequest) {
        let limited = match &req {
            MeshRequest::Worm(w) => self
                .limits
                .take(now, Kind::Worm, peer, false)
                .and_then(|()| {
                    self.limits
                        .take(now, Kind::Worm, w.originator.node_id, true)
                }),
            MeshRequest::Query(_) => self.limits.take(now, Kind::Query, peer, false),
            MeshRequest::Address(_) => self.limits.take(now, Kind::Address, peer, false),
        };
        if let Err(wait) = limited {
            self.stats.rate_limited += 1;
            self.respond(id, Err(Refusal::RateLimited(wait)));
            return;
        }
        match req {
            MeshRequest::Address(a) => self.serve_address(now, id, a),
            MeshRequest::Query(q) => {
                let req = WormRequest {
                    version: q.version,
                    worm_id: q.worm_id,
                    targets: q.targets,
                    post_ids: q.post_ids,
                    ttl: 0,
                    originator: PeerAddress {
                        node_id: peer,
                        addresses: Vec::new(),
                        is_anchor: false,
                        last_seen_ms: 0,
                    },
                    visited: Vec::new(),
                };
                let task = self.start_worm(now, Owner::Remote(id), Some(peer), req, true);
                self.maybe_finish(now, task);
            }
            MeshRequest::Worm(w) => {
                if w.ttl > MAX_WORM_TTL {
                    self.respond(id, Err(Refusal::Malformed("ttl above 5")));
                    return;
                }
                if self.tasks.seen.get(&w.worm_id).is_some_and(|t| *t > now)
                    || w.visited.contains(&self.me)
                {
                    let empty = WormResponse {
                        version: PROTOCOL_VERSION,
                        worm_id: w.worm_id,
                        hits: Vec::new(),
                        closest: None,
                    };
                    self.respond(id, Ok(MeshResponse::Worm(empty)));
                    return;
                }
                self.tasks.seen.insert(w.worm_id, now + WORM_SEEN_FOR);
                let task = self.start_worm(now, Owner::Remote(id), Some(peer), w, false);
                self.maybe_finish(now, task);
            }
        }
    }

    fn respond(&mut self, id: ReqId, result: Result<MeshResponse, Refusal>) {
        self.out.push_back(OutEvent::Respond { id, result });
    }

    fn serve_address(&mut self, now: Duration, id: ReqId, a: AddressRequest) {
        let depth = a.depth.min(MAX_ADDRESS_DEPTH);
        let mut entries: Vec<AddressEntry> = a.targets.iter().map(|t| address_entry(*t)).collect();
        // One sub-request per peer asked, for at most the first 8 targets.
        let mut asks: Vec<(NodeId, Vec<(usize, NodeId)>)> = Vec::new();
        let mut recursive = 0;
        for (i, t) in a.targets.iter().enumerate() {
            match self.local(t) {
                Local::Known(pa, _) => entries[i].peer = Some(pa),
                Local::Ask { peer, .. } => {
                    entries[i].referral = Some(peer);
                    if depth > 0 && recursive < MAX_RECURSIVE_TARGETS {
                        recursive += 1;
                        match asks.iter_mut().find(|(p, _)| *p == peer) {
                            Some((_, v)) => v.push((i, *t)),
                            None => asks.push((peer, vec![(i, *t)])),
                        }
                    }
                }
                Local::Unknown => {}
            }
        }
        if asks.is_empty() {
            let resp = AddressResponse {
                version: PROTOCOL_VERSION,
                entries,
            };
            self.respond(id, Ok(MeshResponse::Address(resp)));
            return;
        }
        // A responder waits at most depth × 400 ms.
        let wait = self.config.resolve_timeout * u32::from(depth);
        let task = self.new_task(now, Owner::Remote(id), wait, Body::Address(entries));
        for (peer, targets) in asks {
            self.ask_address(task, peer, targets, depth - 1);
        }
    }

    /// Local check and (unless `query_only`) fan-out: phase one of a worm.
    fn start_worm(
        &mut self,
        now: Duration,
        owner: Owner,
        from: Option<NodeId>,
        w: WormRequest,
        query_only: bool,
    ) -> u64 {
        let wait = if query_only {
            self.config.resolve_timeout
        } else {
            self.config.fanout_timeout
        };
        let state = WormState {
            worm_id: w.worm_id,
            targets: w.targets.clone(),
            ttl: w.ttl,
            visited: w.visited,
            from,
            originator: w.originator,
            hits: Vec::new(),
            closest: None,
            peer_closest: Vec::new(),
            query_only,
            forwarded: false,
        };
        let task = self.new_task(now, owner, wait, Body::Worm(Box::new(state)));
        let mut remaining = Vec::new();
        for (i, t) in w.targets.iter().enumerate() {
            match self.local(t) {
                Local::Known(holder, hops) => self.add_hit(
                    task,
                    WormHit {
                        target: t.0,
                        holder,
                        hops,
                    },
                ),
                Local::Ask { peer, depth, .. } => {
                    self.ask_address(task, peer, vec![(i, *t)], depth)
                }
                Local::Unknown => remaining.push(*t),
            }
        }
        if query_only || remaining.is_empty() {
            return task;
        }
        let skip: Vec<NodeId> = self
            .worm_state(task)
            .map(|s| s.visited.clone())
            .unwrap_or_default();
        let peers: Vec<NodeId> = self
            .map
            .hop1()
            .map(|(p, _)| *p)
            .filter(|p| Some(*p) != from && !skip.contains(p))
            .collect();
        for p in peers {
            let q = WormQuery {
                version: PROTOCOL_VERSION,
                worm_id: w.worm_id,
                targets: remaining.clone(),
                post_ids: w.post_ids.clone(),
            };
            self.send(
                task,
                p,
                MeshRequest::Query(q),
                self.config.fanout_timeout,
                Purpose::Query,
            );
        }
        task
    }

    fn worm_state(&self, task: u64) -> Option<&WormState> {
        match self.tasks.tasks.get(&task).map(|t| &t.body) {
            Some(Body::Worm(s)) => Some(s),
            _ => None,
        }
    }

    fn add_hit(&mut self, task: u64, hit: WormHit) {
        if let Some(Task {
            body: Body::Worm(s),
            ..
        }) = self.tasks.tasks.get_mut(&task)
        {
            if !s.hits.iter().any(|h| h.target == hit.target) && s.hits.len() < 32 {
                s.hits.push(hit);
            }
        }
    }

    // ---- replies -------------------------------------------------------

    pub(crate) fn on_response(
        &mut self,
        now: Duration,
        id: ReqId,
        result: Result<MeshResponse, RequestFailed>,
    ) {
        let Some((task, purpose, from)) = self.tasks.outgoing.remove(&id) else {
            return;
        };
        let Some(t) = self.tasks.tasks.get_mut(&task) else {
            return;
        };
        t.pending = t.pending.saturating_sub(1);
        let is_query = purpose == Purpose::Query;
        match (&mut t.body, purpose, result) {
            (Body::Address(entries), Purpose::Resolve(slots), Ok(MeshResponse::Address(r))) => {
                for got in r.entries {
                    let slot = slots
                        .iter()
                        .copied()
                        .find(|i| entries.get(*i).is_some_and(|e| e.node_id == got.node_id));
                    if let (Some(i), Some(peer)) = (slot, got.peer) {
                        if peer.node_id == got.node_id && !peer.addresses.is_empty() {
                            entries[i].peer = Some(peer);
                            entries[i].referral = None;
                        }
                    }
                }
            }
            (Body::Worm(s), Purpose::Resolve(slots), Ok(MeshResponse::Address(r))) => {
                let target = slots.first().and_then(|i| s.targets.get(*i)).copied();
                if let (Some(target), Some(got)) = (target, r.entries.into_iter().next()) {
                    if let (true, Some(peer)) = (got.node_id == target, got.peer) {
                        let hops = match self.map.find(&target) {
                            Some(f) => f.hops(),
                            None => 3,
                        };
                        if !peer.addresses.is_empty()
                            && !s.hits.iter().any(|h| h.target == target.0)
                        {
                            s.hits.push(WormHit {
                                target: target.0,
                                holder: peer,
                                hops,
                            });
                        }
                    }
                }
            }
            (Body::Worm(s), Purpose::Query | Purpose::Forward, Ok(MeshResponse::Worm(r)))
                if r.worm_id == s.worm_id =>
            {
                for h in r.hits {
                    if s.targets.iter().any(|t| t.0 == h.target)
                        && !s.hits.iter().any(|x| x.target == h.target)
                        && s.hits.len() < 32
                    {
                        s.hits.push(h);
                    }
                }
                if let (Some(c), true) = (&r.closest, is_query) {
                    // A fan-out answer's `closest` is that peer's best node:
                    // a candidate of the forward step one hop further out.
                    s.peer_closest.push(Hop {
                        via: from,
                        known: c.node_id,
                    });
                }
                if let (Some(c), Some(first)) = (r.closest, s.targets.first()) {
                    let better = match &s.closest {
                        None => true,
                        Some(old) => route::closer(&first.0, &c.node_id.0, &old.node_id.0),
                    };
                    if better && !c.addresses.is_empty() {
                        s.closest = Some(c);
                    }
                }
            }
            _ => {}
        }
        self.maybe_finish(now, task);
    }

    pub(crate) fn fail_requests_to(&mut self, now: Duration, peer: &NodeId) {
        let ids: Vec<ReqId> = self
            .tasks
            .outgoing
            .iter()
            .filter(|(_, (_, _, p))| p == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.on_response(now, id, Err(RequestFailed::Failed));
        }
    }

    pub(crate) fn task_deadline(&mut self, now: Duration, task: u64) {
        let due = self
            .tasks
            .tasks
            .get(&task)
            .is_some_and(|t| t.deadline <= now);
        if due {
            // Whatever has not answered by now is given up.
            self.tasks.outgoing.retain(|_, (t, _, _)| *t != task);
            if let Some(t) = self.tasks.tasks.get_mut(&task) {
                t.pending = 0;
            }
            self.maybe_finish(now, task);
        }
    }

    /// Move a task on once nothing is pending (or its deadline passed).
    fn maybe_finish(&mut self, now: Duration, task: u64) {
        let Some(t) = self.tasks.tasks.get(&task) else {
            return;
        };
        if t.pending > 0 && t.deadline > now {
            return;
        }
        let forward = match (&t.body, t.owner) {
            (Body::Worm(s), owner) => {
                s.hits.is_empty()
                    && !s.query_only
                    && !s.forwarded
                    && s.ttl > 0
                    // A bucket refresh whose fan-out named a node of its
                    // bucket has its answer (§13.6): any node of the bucket
                    // serves, so the worm goes no further.
                    && !matches!(owner, Owner::Lookup { id, .. }
                        if s.closest.as_ref().is_some_and(|c| self.answers_refresh(id, &c.node_id)))
            }
            (Body::Address(_), _) => false,
        };
        if forward && self.forward(now, task) {
            return;
        }
        let Some(t) = self.tasks.tasks.remove(&task) else {
            return;
        };
        self.tasks.outgoing.retain(|_, (x, _, _)| *x != task);
        match (t.owner, t.body) {
            (Owner::Remote(id), Body::Address(entries)) => {
                let resp = AddressResponse {
                    version: PROTOCOL_VERSION,
                    entries,
                };
                self.respond(id, Ok(MeshResponse::Address(resp)));
            }
            (Owner::Remote(id), Body::Worm(mut s)) => {
                let closest = if s.hits.is_empty() {
                    self.best_closest(&s)
                } else {
                    None
                };
                s.hits.sort_by_key(|h| h.hops);
                let resp = WormResponse {
                    version: PROTOCOL_VERSION,
                    worm_id: s.worm_id,
                    hits: s.hits,
                    closest,
                };
                self.respond(id, Ok(MeshResponse::Worm(resp)));
            }
            (Owner::Lookup { id, started, tier }, Body::Address(entries)) => {
                let Some(e) = entries.into_iter().next() else {
                    return;
                };
                match e.peer {
                    Some(p) => self.emit_lookup(
                        now,
                        id,
                        started,
                        e.node_id,
                        Some((p, tier)),
                        tier_hops(tier),
                        t.messages,
                        None,
                        false,
                    ),
                    None => {
                        let ttl = self.config.worm_ttl;
                        self.start_worm_lookup(now, e.node_id, id, started, t.messages, ttl);
                    }
                }
            }
            (Owner::Lookup { id, started, .. }, Body::Worm(s)) => {
                let target = s.targets.first().copied().unwrap_or(self.me);
                let closest = if s.hits.is_empty() {
                    self.best_closest(&s)
                } else {
                    None
                };
                let forwarded = s.forwarded;
                let hit = s.hits.into_iter().next();
                let hops = hit.as_ref().map_or(0, |h| h.hops);
                let found = hit.map(|h| (h.holder, Tier::Worm));
                self.emit_lookup(
                    now, id, started, target, found, hops, t.messages, closest, forwarded,
                );
            }
        }
    }

    /// Phase two: no hit; send the worm on toward the first target.
    fn forward(&mut self, now: Duration, task: u64) -> bool {
        let Some(s) = self.worm_state(task) else {
            return false;
        };
        let Some(target) = s
            .targets
            .iter()
            .find(|t| !s.hits.iter().any(|h| h.target == t.0))
            .copied()
        else {
            return false;
        };
        let mut excluded: Vec<NodeId> = s.visited.clone();
        excluded.push(self.me);
        if let Some(f) = s.from {
            excluded.push(f);
        }
        // Over hop 1, every peer's reported hop 1 and the fan-out's answers
        // (the map finds the best reported hop by search, not by a scan).
        let answered = s.peer_closest.iter().copied();
        let Some(choice) = self.map.forward_choice(&target, answered, &excluded) else {
            return false;
        };
        if s.visited.len() >= 64 {
            return false; // visited is full: answer with what there is
        }
        let mut visited = s.visited.clone();
        visited.push(self.me);
        let req = WormRequest {
            version: PROTOCOL_VERSION,
            worm_id: s.worm_id,
            targets: s
                .targets
                .iter()
                .filter(|t| !s.hits.iter().any(|h| h.target == t.0))
                .copied()
                .collect(),
            post_ids: Vec::new(),
            ttl: s.ttl - 1,
            originator: s.originator.clone(),
            visited,
        };
        let wait = self.config.hop_timeout * u32::from(s.ttl);
        if let Some(t) = self.tasks.tasks.get_mut(&task) {
            t.deadline = now + wait;
            if let Body::Worm(s) = &mut t.body {
                s.forwarded = true;
            }
        }
        self.timers.insert((now + wait, Timer::Task(task)));
        self.send(
            task,
            choice.via,
            MeshRequest::Worm(req),
            wait,
            Purpose::Forward,
        );
        true
    }

    /// The XOR-closest node with addresses this node knows to the worm's
    /// first target, or the downstream's if closer.
    fn best_closest(&mut self, s: &WormState) -> Option<PeerAddress> {
        let target = *s.targets.first()?;
        let mut best = s.closest.clone();
        let own = Some(self.own_address()).filter(|p| !p.addresses.is_empty());
        let mapped = self
            .map
            .closest_addressable(&target, &s.originator.node_id)
            .and_then(|id| self.map.address_of(&id));
        for pa in [own, mapped].into_iter().flatten() {
            if pa.node_id == s.originator.node_id {
                continue;
            }
            let better = match &best {
                None => true,
                Some(b) => route::closer(&target.0, &pa.node_id.0, &b.node_id.0),
            };
            if better {
                best = Some(pa);
            }
        }
        best
    }

    /// Tasks in progress.
    pub fn tasks_in_progress(&self) -> usize {
        self.tasks.len()
    }
}

fn tier_hops(t: Tier) -> u8 {
    match t {
        Tier::Direct => 1,
        Tier::Hop2 => 2,
        Tier::Hop3 => 3,
        Tier::Worm => 0,
    }
}
