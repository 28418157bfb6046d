//! The mesh (`schema/README.md` §13): the 3-hop discovery map, diff gossip,
//! worm lookups, address resolution and connection slots, as one sans-IO
//! state per node.
//!
//! Shaped like iroh-gossip's `proto`: a [`Mesh`] takes inputs with
//! [`Mesh::handle`] (`now` + an [`InEvent`]: a peer connected or left, a
//! mesh message or request arrived, a reply to one of its own requests came
//! back, the timer fired, a command) and queues outputs drained with
//! [`Mesh::poll`] ([`OutEvent`]: push a message, send a request, answer a
//! request, dial, disconnect, report an event). [`Mesh::poll_timeout`] says
//! when to call `handle(now, InEvent::Tick)`. No sockets, no clock, no
//! global randomness: a seed is passed in, so the node, the anchor and the
//! simulator (`distsoc-sim`) run the same code and every run is repeatable.
//!
//! Parts: [`map`] (hops 1–3, the view journal), [`hop3`] (compact hop 3),
//! [`route`] (XOR forward step, wide-peer rule), `gossip` (RoutingDiff,
//! InitialMapSync, MapSyncRequest), `worm` (lookups, worm relay, fan-out,
//! address resolution) and `slots` (which peers to hold).

pub mod hop3;
pub mod map;
mod reported;
pub mod route;

mod blocks;
mod chunked;
pub mod gossip;
pub mod limiter;
pub mod share;
pub mod slots;
pub mod worm;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::ids::NodeId;
use crate::messages::common::PeerAddress;
use crate::messages::discovery::{
    AddressRequest, AddressResponse, InitialMapSync, MapSyncRequest, RoutingDiff, WormQuery,
    WormRequest, WormResponse,
};

pub use map::{Found, Hop1Peer, Map, MapStats, SlotClass};

use gossip::PeerSync;
use limiter::Limits;
use slots::Slots;
use worm::Tasks;

/// Outputs a drained mesh keeps room for (more is given back: a heap
/// profile of a simulated join found bursts' leftover buffers at 6 % of
/// the live heap).
const OUT_KEEP: usize = 16;

/// Tunables of one node's mesh. [`MeshConfig::desktop`],
/// [`MeshConfig::mobile`] and [`MeshConfig::anchor`] are the profiles of
/// §13.6.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Social slots (desktop 81, mobile 10).
    pub social_slots: usize,
    /// Wide slots, anchors included (desktop 20, mobile 5).
    pub wide_slots: usize,
    /// Anchors among the wide slots (2).
    pub min_anchors: usize,
    /// Most connections, inbound ones included; inbound connections beyond
    /// it are closed.
    pub max_connections: usize,
    /// This node declared the anchor role.
    pub is_anchor: bool,
    /// Hand out only addresses this node verified (an anchor, §12): its
    /// peers' addresses are those the runtime verified by dialling back
    /// ([`InEvent::PeerAddresses`]), and a hop-2 address a report carried is
    /// asked for from the reporter instead of repeated.
    pub verified_only: bool,
    /// RoutingDiff period (120 s).
    pub diff_interval: Duration,
    /// Wide-peer re-evaluation period (10 min); the first comes at a
    /// random point of ½–1½ periods after the mesh starts.
    pub wide_interval: Duration,
    /// Slot maintenance period (10 s): dial, redial, evict.
    pub maintain_interval: Duration,
    /// How long a relay waits for its fan-out (500 ms).
    pub fanout_timeout: Duration,
    /// How long a node answering an AddressRequest waits per `depth`
    /// level for its own sub-requests, and how long a worm relay or a
    /// WormQuery responder resolves a hop-2/3 target (400 ms).
    pub resolve_timeout: Duration,
    /// How long a requester waits for an AddressRequest answer per
    /// `depth` + 1 (500 ms).
    pub address_wait: Duration,
    /// Per remaining ttl, how long a relay waits for its downstream (1.5 s).
    pub hop_timeout: Duration,
    /// The ttl a lookup starts its worm with (5, the most the wire allows).
    pub worm_ttl: u8,
    /// Minimum time a social peer stays before a higher-priority candidate
    /// may evict it (10 min, the hysteresis of Q1).
    pub min_social_tenure: Duration,
    /// Most social evictions per `wide_interval` (4).
    pub max_evictions: usize,
    /// **For simulation only** (default `None`): report storage shared
    /// with the other meshes of this process ([`share::SharedReports`]):
    /// each peer's reported hop 1 and hop 2 stored once, and one hop-3
    /// fingerprint key for all of them instead of this node's own secret
    /// one. A real node derives its own key from its seed and leaves this
    /// `None`.
    pub shared_reports: Option<share::SharedReports>,
}

impl MeshConfig {
    /// A desktop node: 81 social + 20 wide.
    pub fn desktop() -> Self {
        MeshConfig {
            social_slots: 81,
            wide_slots: 20,
            min_anchors: 2,
            max_connections: 150,
            is_anchor: false,
            verified_only: false,
            diff_interval: Duration::from_secs(120),
            wide_interval: Duration::from_secs(600),
            maintain_interval: Duration::from_secs(10),
            fanout_timeout: Duration::from_millis(500),
            resolve_timeout: Duration::from_millis(400),
            address_wait: Duration::from_millis(500),
            hop_timeout: Duration::from_millis(1500),
            worm_ttl: 5,
            min_social_tenure: Duration::from_secs(600),
            max_evictions: 4,
            shared_reports: None,
        }
    }

    /// A mobile node: 10 social + 5 wide.
    pub fn mobile() -> Self {
        MeshConfig {
            social_slots: 10,
            wide_slots: 5,
            max_connections: 20,
            ..Self::desktop()
        }
    }

    /// An anchor: a large node (~200 connections, §6.3) that takes inbound
    /// connections up to `max_connections`.
    pub fn anchor() -> Self {
        MeshConfig {
            social_slots: 0,
            wide_slots: 40,
            min_anchors: 4,
            max_connections: 400,
            is_anchor: true,
            verified_only: true,
            ..Self::desktop()
        }
    }
}

/// What a peer told about itself in Hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its advertised listen addresses (never the observed address).
    pub addresses: Vec<SocketAddr>,
    /// It declared the anchor role.
    pub is_anchor: bool,
    /// This node dialled it.
    pub outbound: bool,
}

/// A push of the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshMessage {
    /// 0x01.
    RoutingDiff(RoutingDiff),
    /// 0x02.
    InitialMapSync(InitialMapSync),
    /// 0x06.
    MapSyncRequest(MapSyncRequest),
}

/// A request of the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshRequest {
    /// 0x10.
    Worm(WormRequest),
    /// 0x11.
    Query(WormQuery),
    /// 0x20.
    Address(AddressRequest),
}

/// A response of the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshResponse {
    /// 0x12, to a WormRequest or WormQuery.
    Worm(WormResponse),
    /// 0x21.
    Address(AddressResponse),
}

/// Why a request was refused; the runtime answers it as a wire `Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `malformed`: a rule of §13 was broken (e.g. ttl above 5).
    Malformed(&'static str),
    /// `tooLarge`: a bound of §13.4 or §13.2 (chunks, entries of one map,
    /// a report pushed over its bounds).
    TooLarge(&'static str),
    /// `rateLimited`, with the time until the next request is admitted.
    RateLimited(Duration),
}

/// A request identifier: the runtime's for requests it hands in, the
/// mesh's own for requests it sends.
pub type ReqId = u64;

/// Who is wanted in the social slots, by the runtime (follows, audience).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialCandidate {
    /// The peer.
    pub id: NodeId,
    /// Mutual follow 4, audience 3, followed 2, recent sync partner 1.
    pub priority: u8,
    /// Addresses if known (else the map or a lookup finds them).
    pub addresses: Vec<SocketAddr>,
}

/// A command from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Resolve a NodeId's addresses through the chain (§13.7).
    Lookup {
        /// The node sought.
        target: NodeId,
        /// The caller's id for the outcome ([`MeshEvent::LookupDone`]).
        id: u64,
    },
    /// Replace the social wish list.
    SetSocial(Vec<SocialCandidate>),
    /// Nodes learned elsewhere (anchors from the configuration, a
    /// BootstrapResponse): candidates for wide slots.
    AddKnown(Vec<PeerAddress>),
    /// This node's own advertised addresses (answers about itself).
    SetOwnAddresses(Vec<SocketAddr>),
}

/// Something that happened to one of our own requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFailed {
    /// The peer answered with an error.
    Refused,
    /// The connection is gone, the stream failed or timed out.
    Failed,
}

/// An input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InEvent {
    /// A connection completed its Hello exchange.
    PeerUp {
        /// The peer.
        peer: NodeId,
        /// What it declared.
        info: PeerInfo,
    },
    /// A peer's addresses changed, e.g. an anchor verified them by
    /// dialling back (the map and the next diffs carry the new ones).
    PeerAddresses {
        /// The peer.
        peer: NodeId,
        /// Its addresses now (empty: none to hand out).
        addresses: Vec<SocketAddr>,
    },
    /// The connection to a peer closed.
    PeerDown {
        /// The peer.
        peer: NodeId,
    },
    /// A dial requested by [`OutEvent::Connect`] failed.
    DialFailed {
        /// The peer.
        peer: NodeId,
    },
    /// A mesh push arrived.
    Message {
        /// From whom.
        peer: NodeId,
        /// What.
        msg: MeshMessage,
    },
    /// A mesh request arrived; answer with [`OutEvent::Respond`] `id`.
    Request {
        /// From whom.
        peer: NodeId,
        /// The runtime's id for the reply.
        id: ReqId,
        /// What.
        req: MeshRequest,
    },
    /// The reply to one of our [`OutEvent::Request`]s.
    Response {
        /// The id of our request.
        id: ReqId,
        /// The reply or why there is none.
        result: Result<MeshResponse, RequestFailed>,
    },
    /// [`Mesh::poll_timeout`] passed.
    Tick,
    /// A command from the node.
    Command(Command),
}

/// Which tier of the resolution chain found a node (§13.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// A direct peer (or this node).
    Direct,
    /// Hop 2: the reporter answered (or its report carried the address).
    Hop2,
    /// Hop 3: the chain of two referrals.
    Hop3,
    /// The worm.
    Worm,
}

impl Tier {
    /// The tier's name as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Direct => "direct",
            Tier::Hop2 => "hop2",
            Tier::Hop3 => "hop3",
            Tier::Worm => "worm",
        }
    }
}

/// The outcome of a [`Command::Lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupOutcome {
    /// The caller's id.
    pub id: u64,
    /// The node sought.
    pub target: NodeId,
    /// Its addresses, if found, and the tier that found it.
    pub found: Option<(PeerAddress, Tier)>,
    /// Forward steps the worm took before the hit (0 without a worm).
    pub hops: u8,
    /// Requests this node sent for the lookup.
    pub messages: u32,
    /// How long it took.
    pub elapsed: Duration,
    /// When not found: the XOR-closest node with addresses the worm's chain
    /// knew (a bucket candidate).
    pub closest: Option<PeerAddress>,
}

/// An event for the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshEvent {
    /// A lookup finished.
    LookupDone(LookupOutcome),
}

/// An output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutEvent {
    /// Push a message to a connected peer.
    Push {
        /// To whom.
        peer: NodeId,
        /// What.
        msg: MeshMessage,
    },
    /// Send a request; report the reply as [`InEvent::Response`] `id`.
    Request {
        /// To whom (a connected peer).
        peer: NodeId,
        /// Our id for it.
        id: ReqId,
        /// What.
        req: MeshRequest,
        /// After this long the mesh gives up on it (the runtime may cancel).
        timeout: Duration,
    },
    /// Answer a request handed in with [`InEvent::Request`].
    Respond {
        /// The runtime's id.
        id: ReqId,
        /// The response or the refusal.
        result: Result<MeshResponse, Refusal>,
    },
    /// Dial a peer for a slot.
    Connect {
        /// Whom.
        peer: NodeId,
        /// Where.
        addresses: Vec<SocketAddr>,
        /// For which slot.
        class: SlotClass,
    },
    /// Close the connection to a peer (evicted or over capacity).
    Disconnect {
        /// Whom.
        peer: NodeId,
    },
    /// Tell the node something.
    Event(MeshEvent),
}

/// The mesh state of one node.
#[derive(Debug)]
pub struct Mesh {
    pub(crate) me: NodeId,
    pub(crate) config: MeshConfig,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) map: Map,
    pub(crate) own_addresses: Vec<SocketAddr>,
    pub(crate) sync: map::IdMap<PeerSync>,
    pub(crate) tasks: Tasks,
    pub(crate) slots: Slots,
    pub(crate) limits: Limits,
    pub(crate) next_req: ReqId,
    pub(crate) out: VecDeque<OutEvent>,
    /// Timers: (deadline, what). Stale entries are skipped when they fire.
    pub(crate) timers: BTreeSet<(Duration, Timer)>,
    pub(crate) next_diff: Duration,
    pub(crate) stats: Counters,
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Diff,
    /// The periodic slot maintenance (reschedules itself).
    Maintain,
    /// A one-off maintenance soon (after a change of the wish lists or a
    /// lost peer).
    MaintainSoon,
    /// Check held diffs, stalled stagings and unanswered MapSyncRequests.
    Gaps,
    Wide,
    Task(u64),
}

/// Traffic counters of one node (bytes are estimates from entry counts,
/// for the simulator; the runtime measures real bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// RoutingDiffs sent.
    pub diffs_sent: u64,
    /// Changes carried by them.
    pub diff_changes_sent: u64,
    /// InitialMapSync chunks sent.
    pub syncs_sent: u64,
    /// Entries carried by them.
    pub sync_entries_sent: u64,
    /// Gaps detected in received diffs (each triggers a MapSyncRequest).
    pub gaps: u64,
    /// Requests refused by a rate limit.
    pub rate_limited: u64,
    /// Changes of this node's own view (each reaches each peer at most once).
    pub view_changes: u64,
    /// Bucket refreshes started (§13.6).
    pub refreshes: u64,
    /// Of those, answered with a node in the bucket asked for or a deeper
    /// one.
    pub refreshes_found: u64,
    /// Of those found, without a forwarded worm: from the node's own map
    /// (no lookup at all) or from its own fan-out's answers.
    pub refreshes_found_unforwarded: u64,
    /// Answered without such a node (the next refresh waits an hour and
    /// asks by fan-out only if for the same bucket).
    pub refreshes_missed: u64,
}

impl Mesh {
    /// The mesh of `me`; `seed` is the node's randomness (fingerprint key,
    /// worm ids, timer phases, tie-breaks).
    pub fn new(me: NodeId, config: MeshConfig, seed: [u8; 32], now: Duration) -> Self {
        let mut rng = ChaCha8Rng::from_seed(seed);
        let mut fp_key = [0u8; 40];
        rng.fill_bytes(&mut fp_key);
        // Each node's diff timer has its own phase within the period.
        let phase = Duration::from_millis(
            rng.next_u64() % (config.diff_interval.as_millis() as u64).max(1),
        );
        // So does the wide re-evaluation (and its bucket refresh): the
        // first comes at a random point of [½, 1½) periods after the start,
        // so nodes that start together (a network's first minutes, a
        // restart wave) do not re-evaluate in step, and none before its map
        // has had half a period to fill.
        let wide_ms = (config.wide_interval.as_millis() as u64).max(1);
        let wide_first = Duration::from_millis(wide_ms / 2 + rng.next_u64() % wide_ms);
        let mut map = Map::new(me, fp_key);
        let hasher = map.hasher();
        if let Some(shared) = &config.shared_reports {
            map.share_reports(shared.clone());
        }
        let mut mesh = Mesh {
            me,
            map,
            own_addresses: Vec::new(),
            sync: HashMap::with_hasher(hasher.clone()),
            tasks: Tasks::default(),
            slots: Slots::new(hasher.clone()),
            limits: Limits::default(),
            next_req: 1,
            out: VecDeque::new(),
            timers: BTreeSet::new(),
            next_diff: now + phase,
            stats: Counters::default(),
            rng,
            config,
        };
        mesh.timers.insert((mesh.next_diff, Timer::Diff));
        mesh.timers.insert((now, Timer::Maintain));
        mesh.timers.insert((now + wide_first, Timer::Wide));
        mesh
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The configuration.
    pub fn config(&self) -> &MeshConfig {
        &self.config
    }

    /// The map.
    pub fn map(&self) -> &Map {
        &self.map
    }

    /// Map sizes and memory.
    pub fn map_stats(&mut self) -> MapStats {
        self.map.stats()
    }

    /// Traffic counters.
    pub fn counters(&self) -> Counters {
        Counters {
            view_changes: self.map.logged,
            ..self.stats
        }
    }

    /// The slot class of each connected peer.
    pub fn peers(&self) -> impl Iterator<Item = (NodeId, SlotClass)> + '_ {
        self.map.hop1().map(|(id, p)| (*id, p.class))
    }

    /// The next output, if any.
    pub fn poll(&mut self) -> Option<OutEvent> {
        let ev = self.out.pop_front();
        if ev.is_none() && self.out.capacity() > OUT_KEEP {
            // A burst (a diff tick to every peer, a map sync's chunks)
            // leaves a large buffer behind: give it back once drained.
            self.out.shrink_to(OUT_KEEP);
        }
        ev
    }

    /// When to call `handle(now, InEvent::Tick)` next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Feed one input.
    pub fn handle(&mut self, now: Duration, event: InEvent) {
        match event {
            InEvent::PeerUp { peer, info } => self.peer_up(now, peer, info),
            InEvent::PeerAddresses { peer, addresses } => {
                if let Some(p) = self.map.peer(&peer).cloned() {
                    self.map.set_hop1(peer, Hop1Peer { addresses, ..p });
                }
            }
            InEvent::PeerDown { peer } => self.peer_down(now, peer),
            InEvent::DialFailed { peer } => self.dial_failed(now, peer),
            InEvent::Message { peer, msg } => self.on_message(now, peer, msg),
            InEvent::Request { peer, id, req } => self.on_request(now, peer, id, req),
            InEvent::Response { id, result } => self.on_response(now, id, result),
            InEvent::Tick => self.on_tick(now),
            InEvent::Command(c) => self.on_command(now, c),
        }
    }

    fn on_command(&mut self, now: Duration, c: Command) {
        match c {
            Command::Lookup { target, id } => self.start_lookup(now, target, id),
            Command::SetSocial(list) => {
                self.slots.set_social(list);
                self.timers.insert((now, Timer::MaintainSoon));
            }
            Command::AddKnown(list) => {
                for p in list {
                    self.slots.add_known(&p);
                }
                self.timers.insert((now, Timer::MaintainSoon));
            }
            Command::SetOwnAddresses(a) => self.own_addresses = a,
        }
    }

    fn on_tick(&mut self, now: Duration) {
        while let Some(&(t, timer)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Diff => {
                    if t == self.next_diff {
                        self.send_diffs();
                        self.next_diff = now + self.config.diff_interval;
                        self.timers.insert((self.next_diff, Timer::Diff));
                    }
                }
                Timer::Maintain => {
                    self.maintain(now);
                    self.timers
                        .insert((now + self.config.maintain_interval, Timer::Maintain));
                }
                Timer::MaintainSoon => self.maintain(now),
                Timer::Gaps => self.check_gaps(now),
                Timer::Wide => {
                    self.reevaluate_wide(now, true);
                    self.timers
                        .insert((now + self.config.wide_interval, Timer::Wide));
                }
                Timer::Task(id) => self.task_deadline(now, id),
            }
        }
        self.limits.purge(now);
        self.tasks.purge_seen(now);
    }

    fn peer_up(&mut self, now: Duration, peer: NodeId, info: PeerInfo) {
        if peer == self.me {
            return;
        }
        let class = self.slots.class_for(&peer, &info, now);
        if self.map.peer(&peer).is_none() && self.map.hop1().count() >= self.config.max_connections
        {
            self.out.push_back(OutEvent::Disconnect { peer });
            return;
        }
        self.map.set_hop1(
            peer,
            Hop1Peer {
                addresses: info.addresses.clone(),
                is_anchor: info.is_anchor,
                class,
            },
        );
        self.slots.connected(peer, info, now);
        self.start_sync_to(peer);
    }

    fn peer_down(&mut self, now: Duration, peer: NodeId) {
        self.map.remove_hop1(&peer);
        self.sync.remove(&peer);
        self.slots.disconnected(&peer, now);
        self.limits.forget_peer(&peer);
        self.fail_requests_to(now, &peer);
        self.timers
            .insert((now + Duration::from_secs(1), Timer::MaintainSoon));
    }

    fn dial_failed(&mut self, now: Duration, peer: NodeId) {
        self.slots.dial_failed(&peer, now);
    }

    pub(crate) fn next_id(&mut self) -> ReqId {
        let id = self.next_req;
        self.next_req += 1;
        id
    }

    pub(crate) fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

#[cfg(test)]
mod tests;
