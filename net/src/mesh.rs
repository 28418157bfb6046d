//! The mesh driver: runs one sans-IO [`Mesh`] (`distsoc_protocol::mesh`,
//! `schema/README.md` §13) over a [`Transport`]. Every role uses it: the
//! user node with [`MeshConfig::desktop`] or [`MeshConfig::mobile`], the
//! anchor with [`MeshConfig::anchor`].
//!
//! # Shape
//!
//! One [`MeshHandle`] (cheap to clone) owns the state behind one mutex; the
//! lock is held only to call `Mesh::handle` and drain `Mesh::poll`, never
//! across an `.await`. Inputs:
//!
//! * **connections** — [`MeshHandle::connected`] / [`MeshHandle::disconnected`]
//!   from the transport's `on_connected` / `on_disconnected` hooks (wired by
//!   [`MeshHandle::route`]): only a peer that declared [`MESH_CAPABILITY`]
//!   in its Hello is a peer of the mesh (§3.2, §13); `PeerUp` carries its
//!   *advertised* `listenAddresses` (never the observed address; an
//!   unspecified IP becomes the connection's IP, port 0 is dropped, §13.1),
//!   `is_anchor` from its roles and the direction; `PeerDown` when that very connection closes (a
//!   peer that reconnected keeps its newer connection: events are matched by
//!   connection id);
//! * **pushes** 0x01 RoutingDiff, 0x02 InitialMapSync, 0x06 MapSyncRequest —
//!   one that arrives on a bidirectional stream is checked with
//!   [`Mesh::check_push`] (§13.9) and answered `Error(malformed | tooLarge
//!   | rateLimited)` or `Ack`;
//! * **requests** 0x10 WormRequest, 0x11 WormQuery, 0x20 AddressRequest — the
//!   handler waits on a oneshot for the mesh's `Respond` (a refusal becomes
//!   `Error(malformed)` or `Error(rateLimited)` with `retryAfterMs`);
//! * **replies** to the mesh's own requests, sent with
//!   [`Peer::call_with_timeout`] at the timeout the mesh chose;
//! * **the timer**: a task sleeps until `Mesh::poll_timeout` (tokio time;
//!   the mesh's clock is the time since the driver started) and feeds `Tick`;
//! * **commands**: [`MeshHandle::lookup`], [`MeshHandle::set_social`],
//!   [`MeshHandle::add_known`], [`MeshHandle::set_own_addresses`].
//!
//! Outputs are executed as they are drained: `Push` is a fire-and-forget
//! unidirectional push, `Request` a typed call whose reply (or failure) is
//! fed back as `Response`, `Respond` completes the waiting handler,
//! `Connect` dials each address in turn (all failing → `DialFailed`),
//! `Disconnect` closes the connection normally, `LookupDone` completes the
//! caller of [`MeshHandle::lookup`].
//!
//! # Bounds
//!
//! Nothing is queued without a bound: I/O started for the mesh (pushes,
//! requests, dials) runs in at most [`MAX_IO_TASKS`] tasks — beyond it a
//! push is dropped (the mesh's diffs are journaled, a gap is repaired by a
//! resync) and a request or dial fails at once; at most [`MAX_WAITING`]
//! peer requests wait for the mesh (more are answered `unavailable`), each
//! bounded by the mesh's own deadlines and by [`REQUEST_DEADLINE`]; at most
//! [`MAX_LOOKUPS`] lookups run at once.
//!
//! The anchor tier of the resolution chain (§13.7: profile anchors, then
//! bootstrap anchors) is outside the state machine:
//! [`MeshHandle::resolve`] asks connected anchors' address caches when the
//! mesh does not find a node.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use distsoc_protocol::error::{ErrorCode, RateLimited, ToWireError};
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::mesh::{
    Command, InEvent, LookupOutcome, MapStats, Mesh, MeshConfig, MeshEvent, MeshMessage,
    MeshRequest, MeshResponse, OutEvent, Refusal, RequestFailed, SlotClass, SocialCandidate, Tier,
};
use distsoc_protocol::messages::common::{PeerAddress, Role, SocketAddress};
use distsoc_protocol::messages::discovery::{
    AddressRequest, AddressResponse, InitialMapSync, MapSyncRequest, RoutingDiff, WormQuery,
    WormRequest, WormResponse,
};
use distsoc_protocol::messages::wire;
use rand_core::RngCore;
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::time::Instant;
use tracing::debug;

use crate::transport::{Direction, Peer, PeerInfo, RequestCtx, RequestError, Router, Transport};

/// The capability of a mesh peer (`schema/README.md` §3.2): only peers that
/// declared it in their Hello are peers of the mesh (§13).
pub const MESH_CAPABILITY: &str = "mesh/1";
/// The capability of a node that serves `WormRequest` and `WormQuery`.
pub const WORM_CAPABILITY: &str = "worm/1";

/// Most I/O tasks (pushes, requests, dials) the driver runs at once.
pub const MAX_IO_TASKS: usize = 512;
/// Most peer requests waiting for the mesh's answer at once.
pub const MAX_WAITING: usize = 1024;
/// Most lookups running at once.
pub const MAX_LOOKUPS: usize = 64;
/// Longest a peer's request waits for the mesh (its own deadlines are
/// shorter: a worm relay waits at most ttl × 1.5 s plus its fan-out).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(15);
/// Longest a lookup waits for the mesh's outcome.
pub const LOOKUP_DEADLINE: Duration = Duration::from_secs(30);
/// How long an anchor has to answer the anchor tier's AddressRequest.
pub const ANCHOR_TIMEOUT: Duration = Duration::from_secs(3);
/// Most of the target's profile anchors the profile-anchor tier tries (a
/// profile names up to 16).
pub const MAX_PROFILE_ANCHORS: usize = 4;
/// How long the profile-anchor tier waits for a dial to one of them.
pub const PROFILE_ANCHOR_DIAL: Duration = Duration::from_secs(5);
/// Outputs kept while no transport is attached yet (then executed).
const MAX_EARLY_OUTPUTS: usize = 256;

/// Why a lookup could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// [`MAX_LOOKUPS`] lookups are running; try again later.
    #[error("too many lookups running")]
    Busy,
    /// The mesh gave no outcome within [`LOOKUP_DEADLINE`].
    #[error("the lookup did not finish in time")]
    TimedOut,
    /// The driver was stopped.
    #[error("the mesh driver is stopped")]
    Stopped,
}

/// Which tier of the resolution chain found a node: the mesh's own
/// ([`Tier`]), one of the anchors the target's profile names, or one of
/// this node's own (bootstrap) anchors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedTier {
    /// Found by the mesh (direct, hop 2, hop 3, worm).
    Mesh(Tier),
    /// Found in the address cache of an anchor the target's profile names
    /// (`PublicProfile.anchors`): where the target says it checks in.
    ProfileAnchor,
    /// Found in the address cache of one of this node's own (bootstrap)
    /// anchors.
    BootstrapAnchor,
}

impl ResolvedTier {
    /// The tier's name as the CLI prints it: `direct`, `hop2`, `hop3`,
    /// `worm`, `profileAnchor` or `bootstrapAnchor` (the names of
    /// `schema/README.md` §13.7).
    pub fn as_str(self) -> &'static str {
        match self {
            ResolvedTier::Mesh(t) => t.as_str(),
            ResolvedTier::ProfileAnchor => "profileAnchor",
            ResolvedTier::BootstrapAnchor => "bootstrapAnchor",
        }
    }
}

/// What the caller knows beyond the mesh for [`MeshHandle::resolve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveHints {
    /// The anchors the target's held profile names (`PublicProfile.anchors`,
    /// in its order of preference), with the addresses the caller already
    /// knows for them (may be none); the first [`MAX_PROFILE_ANCHORS`] are
    /// asked, dialled first if not connected.
    pub profile_anchors: Vec<PeerAddress>,
    /// This node's own anchors, asked (when connected) before any other
    /// connected peer that declared the anchor role.
    pub anchors: Vec<NodeId>,
}

/// The outcome of [`MeshHandle::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The node sought.
    pub target: NodeId,
    /// Its addresses and the tier that found them, if found.
    pub found: Option<(PeerAddress, ResolvedTier)>,
    /// Forward steps of the worm before the hit (0 without a worm).
    pub hops: u8,
    /// Requests sent for it (the mesh's and the anchor tier's).
    pub messages: u32,
    /// How long it took.
    pub elapsed: Duration,
}

/// One connection of the mesh, for `peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshPeer {
    /// The peer.
    pub node_id: NodeId,
    /// Why this node holds the connection.
    pub class: SlotClass,
}

/// A snapshot of the mesh for status output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshStatus {
    /// This node.
    pub node_id: NodeId,
    /// Map sizes and memory.
    pub map: MapStats,
    /// The connections and their slot classes.
    pub peers: Vec<MeshPeer>,
    /// Requests refused by the mesh's rate limits so far.
    pub rate_limited: u64,
    /// Gaps in received diffs so far (each repaired by a resync).
    pub gaps: u64,
}

/// The state behind the lock: the mesh and the connection each peer's
/// `PeerUp` was fed for.
struct State {
    mesh: Mesh,
    conns: HashMap<NodeId, usize>,
    /// Outputs drained before a transport was attached.
    early: Vec<OutEvent>,
}

struct Shared {
    me: NodeId,
    start: Instant,
    state: Mutex<State>,
    transport: OnceLock<Weak<Transport>>,
    /// Wakes the timer task (an input may have moved the next deadline).
    wake: Arc<Notify>,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Result<MeshResponse, Refusal>>>>,
    lookups: Mutex<HashMap<u64, oneshot::Sender<LookupOutcome>>>,
    next_id: AtomicU64,
    io: Arc<Semaphore>,
    stopped: AtomicBool,
    /// Peers whose last InitialMapSync chunk arrived (bounded by the
    /// connections: entries leave with `PeerDown`).
    synced: Mutex<HashSet<NodeId>>,
    synced_changed: Notify,
    /// This node's advertised addresses as configured, and the IP a peer
    /// last saw it at (for an advertised unspecified IP, §13.1).
    own: Mutex<(Vec<SocketAddr>, Option<std::net::IpAddr>)>,
}

/// The mesh driver of one endpoint. Cheap to clone; every clone drives the
/// same mesh.
#[derive(Clone)]
pub struct MeshHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MeshHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshHandle")
            .field("me", &self.shared.me)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes a waiting entry when its waiter goes away (answered, timed out,
/// or cancelled because the peer abandoned the stream).
struct Waiter<'a, T> {
    map: &'a Mutex<HashMap<u64, T>>,
    id: u64,
}

impl<T> Drop for Waiter<'_, T> {
    fn drop(&mut self) {
        lock(self.map).remove(&self.id);
    }
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> wire::Error {
    wire::Error::new(code, 0, message)
}

/// The wire error of a mesh refusal.
fn refusal_error(r: Refusal) -> wire::Error {
    match r {
        Refusal::Malformed(why) => refuse(ErrorCode::Malformed, why),
        Refusal::TooLarge(why) => refuse(ErrorCode::TooLarge, why),
        Refusal::RateLimited(retry_after) => RateLimited {
            what: "mesh request rate limit exceeded",
            retry_after,
        }
        .to_wire_error(),
    }
}

impl MeshHandle {
    /// A driver for the node `me` with `config`. It does nothing on the
    /// network until [`MeshHandle::attach`] gives it the transport; the
    /// timer starts then.
    pub fn new(me: NodeId, config: MeshConfig) -> Self {
        let mut seed = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut seed);
        let start = Instant::now();
        let mesh = Mesh::new(me, config, seed, Duration::ZERO);
        MeshHandle {
            shared: Arc::new(Shared {
                me,
                start,
                state: Mutex::new(State {
                    mesh,
                    conns: HashMap::new(),
                    early: Vec::new(),
                }),
                transport: OnceLock::new(),
                wake: Arc::new(Notify::new()),
                waiting: Mutex::new(HashMap::new()),
                lookups: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                io: Arc::new(Semaphore::new(MAX_IO_TASKS)),
                stopped: AtomicBool::new(false),
                synced: Mutex::new(HashSet::new()),
                synced_changed: Notify::new(),
                own: Mutex::new((Vec::new(), None)),
            }),
        }
    }

    /// Registers the mesh's handlers on a role's router: pushes 0x01, 0x02,
    /// 0x06, requests 0x10, 0x11, 0x20, and the connection hooks. `get`
    /// finds the driver in the role's state. A role that answers a code
    /// itself (the anchor's AddressRequest) registers its handler after.
    pub fn route<S: Send + Sync + 'static>(
        router: Router<S>,
        get: fn(&S) -> &MeshHandle,
    ) -> Router<S> {
        router
            .push(move |s: Arc<S>, ctx, m: RoutingDiff| {
                let r = get(&s).serve_push(&ctx, MeshMessage::RoutingDiff(m));
                std::future::ready(r)
            })
            .push(move |s: Arc<S>, ctx, m: InitialMapSync| {
                let r = get(&s).serve_push(&ctx, MeshMessage::InitialMapSync(m));
                std::future::ready(r)
            })
            .push(move |s: Arc<S>, ctx, m: MapSyncRequest| {
                let r = get(&s).serve_push(&ctx, MeshMessage::MapSyncRequest(m));
                std::future::ready(r)
            })
            .request(move |s: Arc<S>, ctx: RequestCtx, r: WormRequest| {
                let mesh = get(&s).clone();
                async move { worm_reply(mesh.serve_request(ctx.peer, MeshRequest::Worm(r)).await) }
            })
            .request(move |s: Arc<S>, ctx: RequestCtx, r: WormQuery| {
                let mesh = get(&s).clone();
                async move { worm_reply(mesh.serve_request(ctx.peer, MeshRequest::Query(r)).await) }
            })
            .request(move |s: Arc<S>, ctx: RequestCtx, r: AddressRequest| {
                let mesh = get(&s).clone();
                async move { mesh.serve_address(ctx.peer, r).await }
            })
            .on_connected(move |s, info| get(s).connected(&info))
            .on_disconnected(move |s, info| get(s).disconnected(&info))
    }

    /// Gives the driver its transport and starts the timer. Outputs the
    /// mesh produced before (a connection that came up first) run now.
    /// Calling it again has no effect.
    pub fn attach(&self, transport: &Arc<Transport>) {
        if self
            .shared
            .transport
            .set(Arc::downgrade(transport))
            .is_err()
        {
            return;
        }
        let early = std::mem::take(&mut lock(&self.shared.state).early);
        let mut inputs = Vec::new();
        for out in early {
            inputs.extend(self.execute(out));
        }
        for ev in inputs {
            self.feed(ev);
        }
        tokio::spawn(timer_loop(
            Arc::downgrade(&self.shared),
            self.shared.wake.clone(),
        ));
    }

    /// Stops the timer; pending lookups and requests fail.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        lock(&self.shared.waiting).clear();
        lock(&self.shared.lookups).clear();
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.me
    }

    /// The mesh's clock: time since the driver started.
    fn now(&self) -> Duration {
        self.shared.start.elapsed()
    }

    fn transport(&self) -> Option<Arc<Transport>> {
        self.shared.transport.get().and_then(Weak::upgrade)
    }

    /// Feeds one input and executes what it produced (and what those
    /// produced, until nothing is left).
    fn feed(&self, ev: InEvent) {
        self.feed_with(|_| Some(ev));
    }

    /// Like [`MeshHandle::feed`], with the input decided under the lock
    /// (connection bookkeeping must be atomic with the mesh's view).
    fn feed_with(&self, decide: impl FnOnce(&mut State) -> Option<InEvent>) {
        if self.shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let mut next = {
            let mut st = lock(&self.shared.state);
            let Some(ev) = decide(&mut st) else {
                return;
            };
            self.step(&mut st, ev)
        };
        self.shared.wake.notify_one();
        while let Some(outs) = next.take() {
            let mut inputs = Vec::new();
            for out in outs {
                inputs.extend(self.execute(out));
            }
            if inputs.is_empty() {
                break;
            }
            let mut st = lock(&self.shared.state);
            let mut all = Vec::new();
            for ev in inputs {
                all.extend(self.step(&mut st, ev).unwrap_or_default());
            }
            next = Some(all);
        }
    }

    /// One `handle` under the lock; returns the outputs to execute (`None`
    /// when they were kept for [`MeshHandle::attach`]).
    fn step(&self, st: &mut State, ev: InEvent) -> Option<Vec<OutEvent>> {
        let now = self.now();
        st.mesh.handle(now, ev);
        let mut outs = Vec::new();
        while let Some(o) = st.mesh.poll() {
            outs.push(o);
        }
        if self.shared.transport.get().is_none() {
            let room = MAX_EARLY_OUTPUTS.saturating_sub(st.early.len());
            st.early.extend(outs.into_iter().take(room));
            return None;
        }
        Some(outs)
    }

    /// Executes one output; returns an input to feed at once (a request
    /// or dial that cannot start).
    fn execute(&self, out: OutEvent) -> Option<InEvent> {
        match out {
            OutEvent::Push { peer, msg } => {
                let (Some(p), Some(permit)) = (self.live(&peer), self.permit()) else {
                    debug!(peer = %peer, "mesh push dropped: no connection or no I/O slot");
                    return None;
                };
                tokio::spawn(async move {
                    let r = match msg {
                        MeshMessage::RoutingDiff(m) => p.push(m).await,
                        MeshMessage::InitialMapSync(m) => p.push(m).await,
                        MeshMessage::MapSyncRequest(m) => p.push(m).await,
                    };
                    if let Err(e) = r {
                        debug!(peer = %p.node_id(), error = %e, "mesh push failed");
                    }
                    drop(permit);
                });
                None
            }
            OutEvent::Request {
                peer,
                id,
                req,
                timeout,
            } => {
                let (Some(p), Some(permit)) = (self.live(&peer), self.permit()) else {
                    return Some(InEvent::Response {
                        id,
                        result: Err(RequestFailed::Failed),
                    });
                };
                let me = self.clone();
                tokio::spawn(async move {
                    let result = call(&p, req, timeout).await;
                    drop(permit);
                    me.feed(InEvent::Response { id, result });
                });
                None
            }
            OutEvent::Respond { id, result } => {
                if let Some(tx) = lock(&self.shared.waiting).remove(&id) {
                    let _ = tx.send(result);
                }
                None
            }
            OutEvent::Connect {
                peer, addresses, ..
            } => {
                let (Some(t), Some(permit)) = (self.transport(), self.permit()) else {
                    return Some(InEvent::DialFailed { peer });
                };
                let me = self.clone();
                tokio::spawn(async move {
                    let up = dial(&t, peer, &addresses).await;
                    drop(permit);
                    match up {
                        Some(p) if is_mesh_peer(p.info()) => me.connected(p.info()),
                        // Reached, but not a mesh node: no slot for it.
                        _ => me.feed(InEvent::DialFailed { peer }),
                    }
                });
                None
            }
            OutEvent::Disconnect { peer } => {
                if let Some(p) = self.live(&peer) {
                    p.close();
                }
                None
            }
            OutEvent::Event(MeshEvent::LookupDone(outcome)) => {
                if let Some(tx) = lock(&self.shared.lookups).remove(&outcome.id) {
                    let _ = tx.send(outcome);
                }
                None
            }
        }
    }

    fn live(&self, peer: &NodeId) -> Option<Peer> {
        self.transport()?.peer(peer)
    }

    fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.shared.io.clone().try_acquire_owned().ok()
    }

    fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A connection completed its Hello exchange: `PeerUp` with its
    /// advertised addresses (once per connection), if the peer declared
    /// [`MESH_CAPABILITY`]; a connection of any other node (a mailbox
    /// client, a conformance tester) is not part of the mesh (§13).
    pub fn connected(&self, info: &PeerInfo) {
        if !is_mesh_peer(info) {
            return;
        }
        self.observed(info);
        let peer = info.node_id;
        let conn = info.connection_id;
        let addresses = map_addresses(info);
        let is_anchor = info.roles.contains(&Role::Anchor);
        let outbound = info.direction == Direction::Outbound;
        self.feed_with(move |st| {
            // A node that hands out only verified addresses (an anchor)
            // learns its peers' addresses from `peer_verified`.
            let addresses = if st.mesh.config().verified_only {
                Vec::new()
            } else {
                addresses
            };
            let ev = InEvent::PeerUp {
                peer,
                info: distsoc_protocol::mesh::PeerInfo {
                    addresses,
                    is_anchor,
                    outbound,
                },
            };
            (st.conns.insert(peer, conn) != Some(conn)).then_some(ev)
        });
    }

    /// The addresses of peer `peer` were verified by dialling back (an
    /// anchor's check-in, schema/README.md §12): the map, the diffs and
    /// every answer now carry them.
    pub fn peer_verified(&self, peer: NodeId, addresses: Vec<SocketAddr>) {
        self.feed_with(move |st| {
            st.conns
                .contains_key(&peer)
                .then_some(InEvent::PeerAddresses { peer, addresses })
        });
    }

    /// A connection closed: `PeerDown`, unless the peer has a newer one.
    pub fn disconnected(&self, info: &PeerInfo) {
        let peer = info.node_id;
        let conn = info.connection_id;
        self.feed_with(move |st| {
            if st.conns.get(&peer) != Some(&conn) {
                return None;
            }
            st.conns.remove(&peer);
            lock(&self.shared.synced).remove(&peer);
            Some(InEvent::PeerDown { peer })
        });
    }

    /// Serves a mesh push. On a bidirectional stream every check of §13.9
    /// runs first ([`Mesh::check_push`]): a refusal is the answer
    /// (`malformed`, `tooLarge`, `rateLimited`), else `Ack`. The push is
    /// handed to the mesh either way, which applies the same rules.
    pub fn serve_push(&self, ctx: &RequestCtx, msg: MeshMessage) -> Result<(), wire::Error> {
        let checked = if ctx.bidirectional {
            let now = self.now();
            lock(&self.shared.state)
                .mesh
                .check_push(now, &ctx.peer, &msg)
        } else {
            Ok(())
        };
        let last_chunk = matches!(&msg, MeshMessage::InitialMapSync(s)
            if Mesh::check_message(&msg).is_ok() && s.chunk_index + 1 == s.chunk_count);
        self.feed(InEvent::Message {
            peer: ctx.peer,
            msg,
        });
        if last_chunk && checked.is_ok() {
            lock(&self.shared.synced).insert(ctx.peer);
            self.shared.synced_changed.notify_waiters();
        }
        checked.map_err(refusal_error)
    }

    /// Waits until each of `peers` has sent the last chunk of an
    /// InitialMapSync on its current connection, or until `within` has
    /// passed; returns the peers that did.
    pub async fn wait_synced(&self, peers: &[NodeId], within: Duration) -> Vec<NodeId> {
        let deadline = Instant::now() + within;
        loop {
            let changed = self.shared.synced_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let done: Vec<NodeId> = {
                let synced = lock(&self.shared.synced);
                peers
                    .iter()
                    .filter(|p| synced.contains(p))
                    .copied()
                    .collect()
            };
            if done.len() == peers.len()
                || tokio::time::timeout_at(deadline, changed).await.is_err()
            {
                return done;
            }
        }
    }

    /// Serves a mesh request from `peer` and waits for the mesh's answer.
    pub async fn serve_request(
        &self,
        peer: NodeId,
        req: MeshRequest,
    ) -> Result<MeshResponse, wire::Error> {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = lock(&self.shared.waiting);
            if waiting.len() >= MAX_WAITING {
                return Err(refuse(ErrorCode::Unavailable, "mesh busy").with_retry_after(1000));
            }
            waiting.insert(id, tx);
        }
        let _waiter = Waiter {
            map: &self.shared.waiting,
            id,
        };
        self.feed(InEvent::Request { peer, id, req });
        match tokio::time::timeout(REQUEST_DEADLINE, rx).await {
            Ok(Ok(Ok(resp))) => Ok(resp),
            Ok(Ok(Err(refusal))) => Err(refusal_error(refusal)),
            Ok(Err(_)) => {
                Err(refuse(ErrorCode::Unavailable, "mesh stopped").with_retry_after(1000))
            }
            Err(_) => Err(
                refuse(ErrorCode::Unavailable, "mesh gave no answer in time")
                    .with_retry_after(1000),
            ),
        }
    }

    /// Serves an AddressRequest from the mesh's map (the anchor merges its
    /// check-in cache around this).
    pub async fn serve_address(
        &self,
        peer: NodeId,
        req: AddressRequest,
    ) -> Result<AddressResponse, wire::Error> {
        match self.serve_request(peer, MeshRequest::Address(req)).await? {
            MeshResponse::Address(a) => Ok(a),
            MeshResponse::Worm(_) => Err(refuse(
                ErrorCode::Internal,
                "mesh answered an AddressRequest with a WormResponse",
            )),
        }
    }

    /// Resolves `target` through the mesh's chain (direct, hop 2, hop 3,
    /// worm).
    pub async fn lookup(&self, target: NodeId) -> Result<LookupOutcome, MeshError> {
        if self.shared.stopped.load(Ordering::SeqCst) {
            return Err(MeshError::Stopped);
        }
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        {
            let mut lookups = lock(&self.shared.lookups);
            if lookups.len() >= MAX_LOOKUPS {
                return Err(MeshError::Busy);
            }
            lookups.insert(id, tx);
        }
        let _waiter = Waiter {
            map: &self.shared.lookups,
            id,
        };
        self.feed(InEvent::Command(Command::Lookup { target, id }));
        match tokio::time::timeout(LOOKUP_DEADLINE, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(MeshError::Stopped),
            Err(_) => Err(MeshError::TimedOut),
        }
    }

    /// The whole chain (§13.5): [`MeshHandle::lookup`] (direct, hop 2,
    /// hop 3, worm), then the profile-anchor tier — an AddressRequest to
    /// each of the target's profile anchors (`hints.profile_anchors`, at
    /// most [`MAX_PROFILE_ANCHORS`]; one not connected is found through the
    /// mesh or this node's anchors and dialled) — then the anchor tier: an
    /// AddressRequest to each connected anchor (`hints.anchors` first, then
    /// every connected peer that declared the anchor role) until one knows
    /// the target. Each anchor is asked once.
    pub async fn resolve(
        &self,
        target: NodeId,
        hints: &ResolveHints,
    ) -> Result<Resolution, MeshError> {
        let started = Instant::now();
        let outcome = self.lookup(target).await?;
        let mut res = Resolution {
            target,
            found: outcome
                .found
                .map(|(addr, tier)| (addr, ResolvedTier::Mesh(tier))),
            hops: outcome.hops,
            messages: outcome.messages,
            elapsed: Duration::ZERO,
        };
        if res.found.is_none() {
            if let Some(t) = self.transport() {
                let mut asked = HashSet::new();
                for known in hints.profile_anchors.iter().take(MAX_PROFILE_ANCHORS) {
                    let id = known.node_id;
                    if id == target || id == t.node_id() || !asked.insert(id) {
                        continue;
                    }
                    let Some(anchor) = self.reach_anchor(&t, known, hints, &mut res).await else {
                        continue;
                    };
                    res.messages += 1;
                    if let Some(found) = ask_anchor(&anchor, target).await {
                        res.found = Some((found, ResolvedTier::ProfileAnchor));
                        break;
                    }
                }
                if res.found.is_none() {
                    res.found = self
                        .ask_own_anchors(&t, target, &hints.anchors, &mut asked, &mut res.messages)
                        .await
                        .map(|found| (found, ResolvedTier::BootstrapAnchor));
                }
            }
        }
        res.elapsed = started.elapsed();
        Ok(res)
    }

    /// Asks the connected anchors (`first`, then every connected peer that
    /// declared the anchor role) not in `asked` for `target`'s address.
    async fn ask_own_anchors(
        &self,
        t: &Transport,
        target: NodeId,
        first: &[NodeId],
        asked: &mut HashSet<NodeId>,
        messages: &mut u32,
    ) -> Option<PeerAddress> {
        let mut ask: Vec<Peer> = first.iter().filter_map(|a| t.peer(a)).collect();
        for info in t.peers() {
            if info.roles.contains(&Role::Anchor)
                && !ask.iter().any(|p| p.node_id() == info.node_id)
            {
                if let Some(p) = t.peer(&info.node_id) {
                    ask.push(p);
                }
            }
        }
        for anchor in ask {
            if anchor.node_id() == target || !asked.insert(anchor.node_id()) {
                continue;
            }
            *messages += 1;
            if let Some(found) = ask_anchor(&anchor, target).await {
                return Some(found);
            }
        }
        None
    }

    /// A connection to the profile anchor `known`: the live one, else a
    /// dial to the addresses the caller knows, else to those the mesh or
    /// one of this node's anchors finds.
    async fn reach_anchor(
        &self,
        t: &Arc<Transport>,
        known: &PeerAddress,
        hints: &ResolveHints,
        res: &mut Resolution,
    ) -> Option<Peer> {
        let id = known.node_id;
        if let Some(p) = t.peer(&id) {
            return Some(p);
        }
        if let Some(p) = dial_any(t, id, &known.addresses).await {
            return Some(p);
        }
        let mut found = match self.lookup(id).await {
            Ok(o) => {
                res.messages += o.messages;
                o.found.map(|(a, _)| a)
            }
            Err(_) => None,
        };
        if found.is_none() {
            let mut none_asked = HashSet::new();
            found = self
                .ask_own_anchors(t, id, &hints.anchors, &mut none_asked, &mut res.messages)
                .await;
        }
        dial_any(t, id, &found?.addresses).await
    }

    /// Replaces the social wish list (follows, audience; priorities of
    /// §13.6).
    pub fn set_social(&self, list: Vec<SocialCandidate>) {
        self.feed(InEvent::Command(Command::SetSocial(list)));
    }

    /// Nodes learned elsewhere (anchors, a BootstrapResponse): wide-slot
    /// candidates.
    pub fn add_known(&self, list: Vec<PeerAddress>) {
        self.feed(InEvent::Command(Command::AddKnown(list)));
    }

    /// This node's advertised addresses (its answers about itself). An
    /// unspecified IP is replaced by the IP a peer observed this node at
    /// (`HelloResponse.observedAddress`) once one is known, and left out
    /// until then; port 0 is left out (§13.1).
    pub fn set_own_addresses(&self, addrs: Vec<SocketAddr>) {
        let resolved = {
            let mut own = lock(&self.shared.own);
            own.0 = addrs;
            resolve_own(&own.0, own.1)
        };
        self.feed(InEvent::Command(Command::SetOwnAddresses(resolved)));
    }

    /// Learns the IP a peer saw this node at; updates the own addresses
    /// when one of them has an unspecified IP.
    fn observed(&self, info: &PeerInfo) {
        let Some(seen) = info.observed_address else {
            return;
        };
        let resolved = {
            let mut own = lock(&self.shared.own);
            if own.1 == Some(seen.ip()) || !own.0.iter().any(|a| a.ip().is_unspecified()) {
                return;
            }
            own.1 = Some(seen.ip());
            resolve_own(&own.0, own.1)
        };
        self.feed(InEvent::Command(Command::SetOwnAddresses(resolved)));
    }

    /// Map sizes and memory.
    pub fn map_stats(&self) -> MapStats {
        lock(&self.shared.state).mesh.map_stats()
    }

    /// Every connection of the mesh with its slot class.
    pub fn peers(&self) -> Vec<MeshPeer> {
        lock(&self.shared.state)
            .mesh
            .peers()
            .map(|(node_id, class)| MeshPeer { node_id, class })
            .collect()
    }

    /// How far `id` is in the map: 0 (this node), 1, 2, 3, or `None`.
    pub fn hops_to(&self, id: &NodeId) -> Option<u8> {
        lock(&self.shared.state)
            .mesh
            .map()
            .find(id)
            .map(|f| f.hops())
    }

    /// Where the map knows `id` to be reachable, if it has addresses.
    pub fn address_of(&self, id: &NodeId) -> Option<PeerAddress> {
        lock(&self.shared.state).mesh.map().peer_address(id)
    }

    /// A snapshot for status output.
    pub fn status(&self) -> MeshStatus {
        let mut st = lock(&self.shared.state);
        let counters = st.mesh.counters();
        MeshStatus {
            node_id: self.shared.me,
            map: st.mesh.map_stats(),
            peers: st
                .mesh
                .peers()
                .map(|(node_id, class)| MeshPeer { node_id, class })
                .collect(),
            rate_limited: counters.rate_limited,
            gaps: counters.gaps,
        }
    }
}

/// Own advertised addresses with an unspecified IP replaced by `seen`
/// (dropped while it is unknown); port 0 dropped.
fn resolve_own(addrs: &[SocketAddr], seen: Option<std::net::IpAddr>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for a in addrs.iter().filter(|a| a.port() != 0) {
        let a = match (a.ip().is_unspecified(), seen) {
            (false, _) => *a,
            (true, Some(ip)) => SocketAddr::new(ip, a.port()),
            (true, None) => continue,
        };
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// Whether the peer declared [`MESH_CAPABILITY`].
fn is_mesh_peer(info: &PeerInfo) -> bool {
    info.capabilities.iter().any(|c| c == MESH_CAPABILITY)
}

/// The addresses a peer advertised, as the map keeps them (§13.1): an
/// unspecified IP ("the IP you see me at, this port") becomes the IP the
/// connection comes from, with the advertised port; port 0 is dropped.
fn map_addresses(info: &PeerInfo) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in &info.listen_addresses {
        if a.port() == 0 {
            continue;
        }
        let a = if a.ip().is_unspecified() {
            SocketAddr::new(info.remote.ip(), a.port())
        } else {
            *a
        };
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// A WormRequest/WormQuery handler's reply from the mesh's answer.
fn worm_reply(r: Result<MeshResponse, wire::Error>) -> Result<WormResponse, wire::Error> {
    match r? {
        MeshResponse::Worm(w) => Ok(w),
        MeshResponse::Address(_) => Err(refuse(
            ErrorCode::Internal,
            "mesh answered a worm request with an AddressResponse",
        )),
    }
}

/// One of the mesh's own requests, typed.
async fn call(
    p: &Peer,
    req: MeshRequest,
    timeout: Duration,
) -> Result<MeshResponse, RequestFailed> {
    let r = match req {
        MeshRequest::Worm(m) => p
            .call_with_timeout(m, timeout)
            .await
            .map(MeshResponse::Worm),
        MeshRequest::Query(m) => p
            .call_with_timeout(m, timeout)
            .await
            .map(MeshResponse::Worm),
        MeshRequest::Address(m) => p
            .call_with_timeout(m, timeout)
            .await
            .map(MeshResponse::Address),
    };
    r.map_err(|e| match e {
        RequestError::Remote(_) => RequestFailed::Refused,
        other => {
            debug!(peer = %p.node_id(), error = %other, "mesh request failed");
            RequestFailed::Failed
        }
    })
}

/// Dials `peer` at each address in turn; the first connection wins.
async fn dial(t: &Transport, peer: NodeId, addresses: &[SocketAddr]) -> Option<Peer> {
    for addr in addresses {
        match t.connect(peer, *addr).await {
            Ok(p) => return Some(p),
            Err(e) => debug!(peer = %peer, %addr, error = %e, "mesh dial failed"),
        }
    }
    None
}

/// The anchor tier: asks one anchor's address cache for `target`.
/// The first of `addresses` at which `id` answers a dial within
/// [`PROFILE_ANCHOR_DIAL`].
async fn dial_any(t: &Transport, id: NodeId, addresses: &[SocketAddress]) -> Option<Peer> {
    for a in addresses {
        match tokio::time::timeout(PROFILE_ANCHOR_DIAL, t.connect(id, a.0)).await {
            Ok(Ok(peer)) => return Some(peer),
            Ok(Err(e)) => debug!(anchor = %id, error = %e, "profile anchor dial failed"),
            Err(_) => debug!(anchor = %id, "profile anchor dial timed out"),
        }
    }
    None
}

async fn ask_anchor(anchor: &Peer, target: NodeId) -> Option<PeerAddress> {
    let req = AddressRequest {
        version: PROTOCOL_VERSION,
        targets: vec![target],
        depth: 0,
    };
    match anchor.call_with_timeout(req, ANCHOR_TIMEOUT).await {
        Ok(resp) => resp
            .entries
            .into_iter()
            .find(|e| e.node_id == target)
            .and_then(|e| e.peer)
            .filter(|p| !p.addresses.is_empty()),
        Err(e) => {
            debug!(anchor = %anchor.node_id(), error = %e, "anchor address request failed");
            None
        }
    }
}

/// Feeds `Tick` whenever the mesh's earliest timer is due; re-reads the
/// deadline whenever an input may have moved it. Ends with the driver.
async fn timer_loop(weak: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        let deadline = {
            let Some(s) = weak.upgrade() else { return };
            if s.stopped.load(Ordering::SeqCst)
                || s.transport.get().and_then(Weak::upgrade).is_none()
            {
                return;
            }
            let next = lock(&s.state).mesh.poll_timeout();
            next.map(|t| s.start + t)
        };
        match deadline {
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep_until(d) => {}
                    () = wake.notified() => continue,
                }
            }
            None => {
                wake.notified().await;
                continue;
            }
        }
        let Some(s) = weak.upgrade() else { return };
        MeshHandle { shared: s }.feed(InEvent::Tick);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn own_unspecified_addresses_wait_for_an_observed_ip() {
        let own = [a("0.0.0.0:4433"), a("192.0.2.1:4433"), a("192.0.2.1:0")];
        assert_eq!(resolve_own(&own, None), vec![a("192.0.2.1:4433")]);
        let seen = Some(a("198.51.100.7:1").ip());
        assert_eq!(
            resolve_own(&own, seen),
            vec![a("198.51.100.7:4433"), a("192.0.2.1:4433")]
        );
    }

    #[test]
    fn refusals_become_typed_wire_errors() {
        assert_eq!(
            refusal_error(Refusal::Malformed("x")).code,
            ErrorCode::Malformed
        );
        assert_eq!(
            refusal_error(Refusal::TooLarge("x")).code,
            ErrorCode::TooLarge
        );
        let limited = refusal_error(Refusal::RateLimited(Duration::from_millis(1500)));
        assert_eq!(limited.code, ErrorCode::RateLimited);
        assert_eq!(limited.retry_after_ms, 1500);
    }
}
