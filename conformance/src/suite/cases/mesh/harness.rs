//! The suite's side of the mesh: a [`Tester`] is a connection whose Hello
//! declares `mesh/1` and `worm/1`, so the target counts it as a peer
//! (schema/README.md §13, §3.2). A background task accepts every stream the
//! target opens on it — map pushes on unidirectional streams, `WormQuery`,
//! forwarded `WormRequest` and `AddressRequest` on bidirectional ones — logs
//! them, and answers the requests (empty worm answers; addresses from the
//! tester's own table). Frame builders and readers for §13's messages.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use distsoc_schema::{common_capnp, discovery_capnp, wire_capnp};
use tokio::sync::mpsc;

use crate::suite::client::{read_reply_on, write_all_on, Reply};
use crate::suite::ctx::{expect_code, now_ms, CaseError, Ctx, Session, MAX_REPLY_BYTES};
use crate::suite::frame::RawFrame;
use crate::suite::wire::{self, code, PROTOCOL_VERSION as V};

pub(crate) type Id = [u8; 32];

/// How long [`Tester::peer`] waits for the target's map before going on
/// (a conforming target sends it right after the Hello exchange; a case
/// that checks the map waits the full reply timeout itself).
const PEER_MAP_WAIT: Duration = Duration::from_secs(2);

/// One stream the target opened to a tester.
#[derive(Clone, Debug)]
pub(crate) struct Got {
    /// A unidirectional stream (a push) — else bidirectional (a request).
    pub uni: bool,
    /// The frame's code byte (0xFF for an empty or unreadable stream).
    pub code: u8,
    /// The whole stream.
    pub bytes: Vec<u8>,
}

impl Got {
    pub(crate) fn frame(&self) -> Result<RawFrame, String> {
        let f = RawFrame::parse(&self.bytes)?;
        f.validate()?;
        Ok(f)
    }
}

/// The addresses a tester answers for, when the target asks it
/// `AddressRequest` (as a referral or a worm's local check).
pub(crate) type Known = Arc<Mutex<HashMap<Id, Vec<SocketAddr>>>>;

/// A mesh peer played by the suite.
pub(crate) struct Tester {
    pub s: Session,
    pub id: Id,
    pub known: Known,
    rx: mpsc::UnboundedReceiver<Got>,
    log: Vec<Got>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tester {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Hello (node role) declaring `mesh/1` and `worm/1` and `listen` as
/// listen addresses.
pub(crate) fn hello(listen: &[SocketAddr]) -> Vec<u8> {
    wire::build::<wire_capnp::hello::Owned, _>(code::HELLO, |mut b| {
        b.set_version(V);
        b.set_min_version(V);
        b.set_max_version(V);
        b.reborrow().init_roles(1).set(0, common_capnp::Role::Node);
        {
            let mut c = b.reborrow().init_capabilities(2);
            c.set(0, "mesh/1");
            c.set(1, "worm/1");
        }
        set_addrs(
            b.reborrow().init_listen_addresses(listen.len() as u32),
            listen,
        );
        b.set_agent(concat!("distsoc-conformance/", env!("CARGO_PKG_VERSION")));
        b.set_time_ms(now_ms());
    })
}

fn set_addrs(
    mut l: capnp::struct_list::Builder<'_, common_capnp::socket_address::Owned>,
    a: &[SocketAddr],
) {
    for (i, a) in a.iter().enumerate() {
        let mut e = l.reborrow().get(i as u32);
        match a.ip() {
            IpAddr::V4(ip) => e.set_ip(&ip.octets()),
            IpAddr::V6(ip) => e.set_ip(&ip.octets()),
        }
        e.set_port(a.port());
    }
}

fn set_peer(mut p: common_capnp::peer_address::Builder<'_>, id: &[u8], addrs: &[SocketAddr]) {
    p.set_node_id(id);
    set_addrs(p.init_addresses(addrs.len() as u32), addrs);
}

/// A documentation address (RFC 5737) with port `n`, as a map hint.
pub(crate) fn doc_addr(n: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 7], n))
}

impl Tester {
    /// Connects as a fresh identity declaring `mesh/1` + `worm/1` and
    /// advertising `listen`, and starts answering the target's streams.
    pub(crate) async fn connect(ctx: &mut Ctx, listen: &[SocketAddr]) -> Result<Self, CaseError> {
        let seed = ctx.random32();
        let s = ctx.connect_as_with(seed, &hello(listen)).await?;
        let id = s.client_id;
        let known: Known = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = s.conn.quinn().clone();
        let k = known.clone();
        let task = crate::suite::trace::spawn(serve(conn, s.conn.number(), tx, k));
        Ok(Self {
            s,
            id,
            known,
            rx,
            log: Vec::new(),
            task,
        })
    }

    /// Like [`Tester::connect`], then sends the tester's own (empty) map so
    /// it is a complete peer, and waits (bounded) for the target's map.
    pub(crate) async fn peer(ctx: &mut Ctx, listen: &[SocketAddr]) -> Result<Self, CaseError> {
        let mut t = Self::connect(ctx, listen).await?;
        let _ = t.s.conn.send_uni(&map_frame(0, 0, 1, &[], &[], 0)).await;
        let _ = t.map_chunks(ctx.timeouts.reply.min(PEER_MAP_WAIT)).await;
        Ok(t)
    }

    /// The tester answers `AddressRequest`s for `id` with `addrs`.
    pub(crate) fn knows(&self, id: Id, addrs: &[SocketAddr]) {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, addrs.to_vec());
    }

    fn drain(&mut self) {
        while let Ok(g) = self.rx.try_recv() {
            self.log.push(g);
        }
    }

    /// Everything received so far.
    pub(crate) fn received(&mut self) -> &[Got] {
        self.drain();
        &self.log
    }

    /// Waits at most `within` for a stream matching `pred` (among those
    /// already received, first); returns the first match.
    pub(crate) async fn wait_for(
        &mut self,
        within: Duration,
        pred: impl Fn(&Got) -> bool,
    ) -> Option<Got> {
        let deadline = tokio::time::Instant::now() + within;
        self.drain();
        if let Some(g) = self.log.iter().find(|g| pred(g)) {
            return Some(g.clone());
        }
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(g)) => {
                    let hit = pred(&g);
                    self.log.push(g.clone());
                    if hit {
                        return Some(g);
                    }
                }
                _ => return None,
            }
        }
    }

    /// Forgets what was received so far.
    pub(crate) fn clear(&mut self) {
        self.drain();
        self.log.clear();
    }

    /// Waits at most `within` until at least `n` streams matching `pred`
    /// have been received (counting those already logged).
    pub(crate) async fn wait_count(
        &mut self,
        within: Duration,
        pred: impl Fn(&Got) -> bool,
        n: usize,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.drain();
            if self.log.iter().filter(|g| pred(g)).count() >= n {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(g)) => self.log.push(g),
                _ => return false,
            }
        }
    }

    /// How many map chunks (`InitialMapSync`) were received so far.
    pub(crate) fn map_count(&mut self) -> usize {
        self.received()
            .iter()
            .filter(|g| g.code == code::INITIAL_MAP_SYNC)
            .count()
    }

    /// Waits at most `within` for every chunk of the map whose first chunk
    /// is the `skip`-th map chunk received (0-based): the chunks with its
    /// `seq`, until `chunkCount` of them are read. Fewer if time runs out;
    /// an error if that chunk never arrives.
    pub(crate) async fn map_chunks_after(
        &mut self,
        within: Duration,
        skip: usize,
    ) -> Result<Vec<Map>, String> {
        let deadline = tokio::time::Instant::now() + within;
        let is_map = |g: &Got| g.code == code::INITIAL_MAP_SYNC;
        if !self.wait_count(within, is_map, skip + 1).await {
            return Err(format!("no InitialMapSync within {within:?}"));
        }
        loop {
            let got: Vec<Got> = self
                .received()
                .iter()
                .filter(|g| is_map(g))
                .skip(skip)
                .cloned()
                .collect();
            let total = got.len();
            let first = read_map(&got[0])?;
            let mut out = Vec::new();
            for g in &got {
                let m = read_map(g)?;
                if m.seq == first.seq {
                    out.push(m);
                }
            }
            if out.len() >= first.chunk_count.clamp(1, 16) as usize {
                return Ok(out);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !self.wait_count(left, is_map, skip + total + 1).await {
                return Ok(out);
            }
        }
    }

    /// [`Tester::map_chunks_after`] for the first map received.
    pub(crate) async fn map_chunks(&mut self, within: Duration) -> Result<Vec<Map>, String> {
        self.map_chunks_after(within, 0).await
    }

    /// Sends `bytes` on a bidirectional stream (no retry).
    pub(crate) async fn exchange(&self, bytes: &[u8]) -> Reply {
        self.s.exchange(bytes).await
    }
}

/// The tester's side of the target's streams: logs each, answers requests.
async fn serve(
    conn: quinn::Connection,
    n: Option<u32>,
    tx: mpsc::UnboundedSender<Got>,
    known: Known,
) {
    loop {
        tokio::select! {
            uni = conn.accept_uni() => {
                let Ok(mut recv) = uni else { return };
                let tx = tx.clone();
                crate::suite::trace::spawn(async move {
                    if let Reply::Finished(bytes) =
                        read_reply_on(&mut recv, MAX_REPLY_BYTES, Duration::from_secs(20), n).await
                    {
                        let code = bytes.first().copied().unwrap_or(0xFF);
                        let _ = tx.send(Got { uni: true, code, bytes });
                    }
                });
            }
            bi = conn.accept_bi() => {
                let Ok((mut send, mut recv)) = bi else { return };
                let tx = tx.clone();
                let known = known.clone();
                crate::suite::trace::spawn(async move {
                    let Reply::Finished(bytes) =
                        read_reply_on(&mut recv, 1 << 20, Duration::from_secs(10), n).await
                    else {
                        return;
                    };
                    let code = bytes.first().copied().unwrap_or(0xFF);
                    let reply = answer(code, &bytes, &known);
                    let _ = tx.send(Got { uni: false, code, bytes });
                    if let Some(reply) = reply {
                        let _ = write_all_on(&mut send, &reply, true, n).await;
                    }
                });
            }
        }
    }
}

/// The tester's answer to a request of the target.
fn answer(c: u8, bytes: &[u8], known: &Known) -> Option<Vec<u8>> {
    let f = RawFrame::parse(bytes).ok()?;
    let reader = f.reader();
    match c {
        code::WORM_QUERY => {
            let r: discovery_capnp::worm_query::Reader<'_> = reader.get_root().ok()?;
            Some(worm_response_frame(r.get_worm_id().ok()?))
        }
        code::WORM_REQUEST => {
            let r: discovery_capnp::worm_request::Reader<'_> = reader.get_root().ok()?;
            Some(worm_response_frame(r.get_worm_id().ok()?))
        }
        code::ADDRESS_REQUEST => {
            let r: discovery_capnp::address_request::Reader<'_> = reader.get_root().ok()?;
            let targets: Vec<Vec<u8>> = r
                .get_targets()
                .ok()?
                .iter()
                .filter_map(|t| t.ok().map(<[u8]>::to_vec))
                .collect();
            let known = known.lock().unwrap_or_else(PoisonError::into_inner).clone();
            Some(wire::build::<discovery_capnp::address_response::Owned, _>(
                code::ADDRESS_RESPONSE,
                |mut b| {
                    b.set_version(V);
                    let mut l = b.init_entries(targets.len() as u32);
                    for (i, t) in targets.iter().enumerate() {
                        let mut e = l.reborrow().get(i as u32);
                        e.set_node_id(t);
                        let addrs = <[u8; 32]>::try_from(t.as_slice())
                            .ok()
                            .and_then(|id| known.get(&id));
                        if let Some(a) = addrs {
                            e.set_found(true);
                            set_peer(e.init_peer(), t, a);
                        }
                    }
                },
            ))
        }
        _ => None,
    }
}

// ---- frames ---------------------------------------------------------------------

fn worm_response_frame(worm_id: &[u8]) -> Vec<u8> {
    wire::build::<discovery_capnp::worm_response::Owned, _>(code::WORM_RESPONSE, |mut b| {
        b.set_version(V);
        b.set_worm_id(worm_id);
    })
}

/// An `InitialMapSync` chunk: `hop1` entries with their addresses, `hop2`
/// ids, and `hop3` random ids (senders must send none).
pub(crate) fn map_frame(
    seq: u64,
    index: u32,
    count: u32,
    hop1: &[(Id, Vec<SocketAddr>)],
    hop2: &[Id],
    hop3: u32,
) -> Vec<u8> {
    wire::build::<discovery_capnp::initial_map_sync::Owned, _>(code::INITIAL_MAP_SYNC, |mut b| {
        b.set_version(V);
        b.set_seq(seq);
        b.set_chunk_index(index);
        b.set_chunk_count(count);
        {
            let mut l = b.reborrow().init_hop1(hop1.len() as u32);
            for (i, (id, addrs)) in hop1.iter().enumerate() {
                set_peer(l.reborrow().get(i as u32).init_peer(), id, addrs);
            }
        }
        {
            let mut l = b.reborrow().init_hop2(hop2.len() as u32);
            for (i, id) in hop2.iter().enumerate() {
                l.reborrow().get(i as u32).set_node_id(id);
            }
        }
        let mut l = b.init_hop3(hop3);
        for i in 0..hop3 {
            let mut id = [0x5a; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            l.set(i, &id);
        }
    })
}

/// A hop-1 change of a `RoutingDiff`.
pub(crate) struct H1 {
    pub id: Id,
    pub kind: discovery_capnp::ChangeKind,
    pub addrs: Vec<SocketAddr>,
}

/// `RoutingDiff{seq, hop1Changes, hop2Changes}`.
pub(crate) fn diff_frame(
    seq: u64,
    hop1: &[H1],
    hop2: &[(Id, discovery_capnp::ChangeKind)],
) -> Vec<u8> {
    wire::build::<discovery_capnp::routing_diff::Owned, _>(code::ROUTING_DIFF, |mut b| {
        b.set_version(V);
        b.set_seq(seq);
        {
            let mut l = b.reborrow().init_hop1_changes(hop1.len() as u32);
            for (i, c) in hop1.iter().enumerate() {
                let mut e = l.reborrow().get(i as u32);
                e.set_node_id(&c.id);
                e.set_kind(c.kind);
                set_addrs(e.init_addresses(c.addrs.len() as u32), &c.addrs);
            }
        }
        let mut l = b.init_hop2_changes(hop2.len() as u32);
        for (i, (id, kind)) in hop2.iter().enumerate() {
            let mut e = l.reborrow().get(i as u32);
            e.set_node_id(id);
            e.set_kind(*kind);
        }
    })
}

/// `MapSyncRequest{lastSeq}`.
pub(crate) fn map_sync_request_frame(last_seq: u64) -> Vec<u8> {
    wire::build::<discovery_capnp::map_sync_request::Owned, _>(code::MAP_SYNC_REQUEST, |mut b| {
        b.set_version(V);
        b.set_last_seq(last_seq);
    })
}

/// A `WormRequest`.
pub(crate) struct Worm {
    /// 16 bytes unless a case wants it wrong.
    pub id: Vec<u8>,
    pub targets: Vec<Id>,
    pub ttl: u8,
    /// `None`: no originator (`malformed`).
    pub originator: Option<Id>,
    pub visited: Vec<Id>,
}

pub(crate) fn worm_request_frame(w: &Worm) -> Vec<u8> {
    wire::build::<discovery_capnp::worm_request::Owned, _>(code::WORM_REQUEST, |mut b| {
        b.set_version(V);
        b.set_worm_id(&w.id);
        {
            let mut l = b.reborrow().init_targets(w.targets.len() as u32);
            for (i, t) in w.targets.iter().enumerate() {
                l.set(i as u32, t);
            }
        }
        b.set_ttl(w.ttl);
        if let Some(o) = &w.originator {
            set_peer(b.reborrow().init_originator(), o, &[]);
        }
        let mut l = b.init_visited(w.visited.len() as u32);
        for (i, t) in w.visited.iter().enumerate() {
            l.set(i as u32, t);
        }
    })
}

pub(crate) fn worm_query_frame(worm_id: &[u8; 16], targets: &[Id]) -> Vec<u8> {
    wire::build::<discovery_capnp::worm_query::Owned, _>(code::WORM_QUERY, |mut b| {
        b.set_version(V);
        b.set_worm_id(worm_id);
        let mut l = b.init_targets(targets.len() as u32);
        for (i, t) in targets.iter().enumerate() {
            l.set(i as u32, t);
        }
    })
}

pub(crate) fn address_request_frame(targets: &[Id], depth: u8) -> Vec<u8> {
    wire::build::<discovery_capnp::address_request::Owned, _>(code::ADDRESS_REQUEST, |mut b| {
        b.set_version(V);
        b.set_depth(depth);
        let mut l = b.init_targets(targets.len() as u32);
        for (i, t) in targets.iter().enumerate() {
            l.set(i as u32, t);
        }
    })
}

// ---- readers --------------------------------------------------------------------

fn err(e: capnp::Error) -> String {
    e.to_string()
}

fn read_addrs(
    l: capnp::struct_list::Reader<'_, common_capnp::socket_address::Owned>,
) -> Result<Vec<SocketAddr>, String> {
    let mut out = Vec::new();
    for a in l.iter() {
        let ip = a.get_ip().map_err(err)?;
        let ip = match ip.len() {
            4 => IpAddr::from([ip[0], ip[1], ip[2], ip[3]]),
            16 => IpAddr::from(<[u8; 16]>::try_from(ip).map_err(|_| "bad ip".to_string())?),
            n => return Err(format!("a {n}-byte ip")),
        };
        out.push(SocketAddr::new(ip, a.get_port()));
    }
    Ok(out)
}

fn read_peer(
    p: common_capnp::peer_address::Reader<'_>,
) -> Result<(Vec<u8>, Vec<SocketAddr>), String> {
    Ok((
        p.get_node_id().map_err(err)?.to_vec(),
        read_addrs(p.get_addresses().map_err(err)?)?,
    ))
}

/// One chunk of an `InitialMapSync`, as read.
#[derive(Clone, Debug)]
pub(crate) struct Map {
    pub seq: u64,
    pub chunk_index: u32,
    pub chunk_count: u32,
    pub hop1: Vec<(Vec<u8>, Vec<SocketAddr>)>,
    pub hop2: usize,
    pub hop3: usize,
}

pub(crate) fn read_map(g: &Got) -> Result<Map, String> {
    let f = g.frame()?;
    let reader = f.reader();
    let r: discovery_capnp::initial_map_sync::Reader<'_> = reader.get_root().map_err(err)?;
    let mut hop1 = Vec::new();
    for e in r.get_hop1().map_err(err)?.iter() {
        hop1.push(read_peer(e.get_peer().map_err(err)?)?);
    }
    Ok(Map {
        seq: r.get_seq(),
        chunk_index: r.get_chunk_index(),
        chunk_count: r.get_chunk_count(),
        hop1,
        hop2: r.get_hop2().map_err(err)?.len() as usize,
        hop3: r.get_hop3().map_err(err)?.len() as usize,
    })
}

pub(crate) fn read_last_seq(g: &Got) -> Result<u64, String> {
    let f = g.frame()?;
    let reader = f.reader();
    let r: discovery_capnp::map_sync_request::Reader<'_> = reader.get_root().map_err(err)?;
    Ok(r.get_last_seq())
}

/// A `WormRequest` the target sent, as read.
#[derive(Clone, Debug)]
pub(crate) struct SeenWorm {
    pub id: Vec<u8>,
    pub targets: Vec<Vec<u8>>,
    pub ttl: u8,
    pub originator: Vec<u8>,
    pub visited: Vec<Vec<u8>>,
}

pub(crate) fn read_worm_request(g: &Got) -> Result<SeenWorm, String> {
    let f = g.frame()?;
    let reader = f.reader();
    let r: discovery_capnp::worm_request::Reader<'_> = reader.get_root().map_err(err)?;
    let list = |l: capnp::data_list::Reader<'_>| -> Result<Vec<Vec<u8>>, String> {
        l.iter()
            .map(|d| d.map(<[u8]>::to_vec).map_err(err))
            .collect()
    };
    Ok(SeenWorm {
        id: r.get_worm_id().map_err(err)?.to_vec(),
        targets: list(r.get_targets().map_err(err)?)?,
        ttl: r.get_ttl(),
        originator: if r.has_originator() {
            r.get_originator()
                .map_err(err)?
                .get_node_id()
                .map_err(err)?
                .to_vec()
        } else {
            Vec::new()
        },
        visited: list(r.get_visited().map_err(err)?)?,
    })
}

/// The `wormId` of a `WormQuery` the target sent.
pub(crate) fn read_worm_query_id(g: &Got) -> Result<Vec<u8>, String> {
    let f = g.frame()?;
    let reader = f.reader();
    let r: discovery_capnp::worm_query::Reader<'_> = reader.get_root().map_err(err)?;
    Ok(r.get_worm_id().map_err(err)?.to_vec())
}

/// One `WormHit`.
#[derive(Clone, Debug)]
pub(crate) struct Hit {
    pub target: Vec<u8>,
    pub holder: Vec<u8>,
    pub addrs: Vec<SocketAddr>,
    pub hops: u8,
}

/// A `WormResponse`, as read.
#[derive(Clone, Debug)]
pub(crate) struct WormAnswer {
    pub id: Vec<u8>,
    pub hits: Vec<Hit>,
    pub closest: Option<Vec<u8>>,
}

impl std::fmt::Display for WormAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WormResponse with {} hit(s)", self.hits.len())?;
        for h in &self.hits {
            write!(
                f,
                " [{} via {} hops {} at {}]",
                hex8(&h.target),
                hex8(&h.holder),
                h.hops,
                show(&h.addrs)
            )?;
        }
        if let Some(c) = &self.closest {
            write!(f, ", closest {}", hex8(c))?;
        }
        Ok(())
    }
}

pub(crate) fn read_worm_response(reply: &Reply) -> Result<WormAnswer, String> {
    let f = expect_code(reply, code::WORM_RESPONSE)?;
    let reader = f.reader();
    let r: discovery_capnp::worm_response::Reader<'_> = reader.get_root().map_err(err)?;
    let mut hits = Vec::new();
    for h in r.get_hits().map_err(err)?.iter() {
        let (holder, addrs) = read_peer(h.get_holder().map_err(err)?)?;
        hits.push(Hit {
            target: h.get_target().map_err(err)?.to_vec(),
            holder,
            addrs,
            hops: h.get_hops(),
        });
    }
    Ok(WormAnswer {
        id: r.get_worm_id().map_err(err)?.to_vec(),
        hits,
        closest: if r.has_closest() {
            Some(
                r.get_closest()
                    .map_err(err)?
                    .get_node_id()
                    .map_err(err)?
                    .to_vec(),
            )
        } else {
            None
        },
    })
}

/// One `AddressEntry`, as read.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub node: Vec<u8>,
    pub found: bool,
    pub addrs: Vec<SocketAddr>,
    pub referral: Vec<u8>,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} found={}", hex8(&self.node), self.found)?;
        if self.found {
            write!(f, " at [{}]", show(&self.addrs))?;
        }
        if !self.referral.is_empty() {
            write!(f, " referral {}", hex8(&self.referral))?;
        }
        Ok(())
    }
}

pub(crate) fn read_entries(reply: &Reply) -> Result<Vec<Entry>, String> {
    let f = expect_code(reply, code::ADDRESS_RESPONSE)?;
    let reader = f.reader();
    let r: discovery_capnp::address_response::Reader<'_> = reader.get_root().map_err(err)?;
    let mut out = Vec::new();
    for e in r.get_entries().map_err(err)?.iter() {
        let found = e.get_found();
        let addrs = if found && e.has_peer() {
            read_peer(e.get_peer().map_err(err)?)?.1
        } else {
            Vec::new()
        };
        out.push(Entry {
            node: e.get_node_id().map_err(err)?.to_vec(),
            found,
            addrs,
            referral: if e.has_referral() {
                e.get_referral().map_err(err)?.to_vec()
            } else {
                Vec::new()
            },
        });
    }
    Ok(out)
}

/// `entries` in words.
pub(crate) fn show_entries(e: &[Entry]) -> String {
    if e.is_empty() {
        return "no entries".into();
    }
    e.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) fn hex8(b: &[u8]) -> String {
    hex::encode(&b[..b.len().min(8)])
}

pub(crate) fn show(a: &[SocketAddr]) -> String {
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
