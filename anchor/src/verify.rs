//! Check-in with verified addresses: an anchor hands out a peer's address
//! (AddressResponse, BootstrapResponse) only after it has dialled that
//! address back and the peer there proved the NodeId (QUIC handshake with
//! the key pinned, then Hello) — `schema/README.md` §12.
//!
//! # What is dialled
//!
//! Only listen addresses a client *announced* in its Hello, and of those
//! only the ones on the **IP address its connection comes from** (an
//! announced unspecified IP, `0.0.0.0:P` or `[::]:P`, means "the address
//! you see me at, port P"). So a client can make the anchor dial nothing
//! but its own IP, where it is already sending packets from: sybils
//! announcing `203.0.113.5:4433` or `8.8.8.8:53` are never dialled, and
//! the anchor cannot be used to send packets to a third party. A client
//! that announced no listen address is never dialled and never checked in:
//! its observed address is never stored nor handed out (an ephemeral DM
//! identity must not be locatable). Port 0 and special-purpose addresses
//! (unspecified, multicast, broadcast, documentation) are never dialled.
//!
//! # Bounds
//!
//! * at most [`VerifyConfig::max_addrs`] addresses per check-in;
//! * at most [`VerifyConfig::max_concurrent`] dial-backs at once
//!   (anchor-wide); a check-in that finds no free slot is not verified now
//!   (the next connection tries again);
//! * at most [`VerifyConfig::dials_per_ip_per_minute`] dial-backs caused by
//!   clients of one source IP per minute;
//! * each dial-back is bounded by [`VerifyConfig::timeout`];
//! * a verified `(NodeId, address)` is trusted for
//!   [`VerifyConfig::cache_ttl`] without dialling again, a failed one is not
//!   dialled again for [`VerifyConfig::retry_after`]; one identity is
//!   verified by one task at a time;
//! * check-in writes are coalesced per identity: at most one per
//!   [`VerifyConfig::write_interval`] unless the verified addresses or the
//!   anchor role changed (in memory; a duplicate costs no storage work).
//!
//! The dial-back uses its own QUIC endpoint with a fresh random identity
//! (bound on the anchor's listen IP, port 0), so it never disturbs the
//! client's connection to the anchor (one connection per peer) and the
//! client cannot tell the probe from any other node.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use distsoc_net::now_ms;
use distsoc_net::transport::{
    Direction, PeerInfo, Router, Transport, TransportConfig, TransportError,
};
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::common::Role;
use distsoc_protocol::sign::SigningKey;
use tokio::sync::Semaphore;
use tracing::debug;

use crate::service::Counters;
use crate::store::AnchorStore;

/// Most entries of each in-memory table (verification cache, write
/// throttle, per-IP budgets) before expired entries are pruned; a full
/// table stops caching (verifications are then redone, still bounded by
/// the per-IP budget).
const MAX_TABLE: usize = 100_000;

/// Dial-back settings (from `anchor.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Bound of one dial-back (QUIC handshake and Hello).
    pub timeout: Duration,
    /// Dial-backs in flight at once, anchor-wide.
    pub max_concurrent: usize,
    /// Addresses verified per check-in.
    pub max_addrs: usize,
    /// Dial-backs caused by clients of one source IP per minute.
    pub dials_per_ip_per_minute: u32,
    /// How long a verified `(NodeId, address)` is trusted without dialling.
    pub cache_ttl: Duration,
    /// How long a failed `(NodeId, address)` is not dialled again.
    pub retry_after: Duration,
    /// At most one check-in write per identity per this interval, unless
    /// something changed.
    pub write_interval: Duration,
}

/// Why an announced address is not dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDialled {
    /// Port 0.
    PortZero,
    /// Unspecified, multicast, broadcast or documentation address.
    Special,
    /// Not the IP the client connects from.
    OtherIp,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || o[0] == 0
                || o[0] >= 240
                || matches!(
                    (o[0], o[1], o[2]),
                    (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
                )
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_unspecified() || v6.is_multicast() || (s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

/// The address to dial for an announced listen address `announced` of a
/// client whose packets come from `observed`, or why none.
pub fn dial_target(announced: SocketAddr, observed: IpAddr) -> Result<SocketAddr, NotDialled> {
    if announced.port() == 0 {
        return Err(NotDialled::PortZero);
    }
    let observed = canonical(observed);
    let ip = canonical(announced.ip());
    if ip.is_unspecified() && !special(observed) {
        return Ok(SocketAddr::new(observed, announced.port()));
    }
    if special(ip) {
        return Err(NotDialled::Special);
    }
    if ip != observed {
        return Err(NotDialled::OtherIp);
    }
    Ok(SocketAddr::new(ip, announced.port()))
}

#[derive(Debug, Clone, Copy)]
struct Verdict {
    ok: bool,
    at: Instant,
    at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    at: Instant,
    addrs: Vec<SocketAddr>,
    is_anchor: bool,
}

#[derive(Debug, Default)]
struct Tables {
    verdicts: HashMap<(NodeId, SocketAddr), Verdict>,
    inflight: HashSet<NodeId>,
    written: HashMap<NodeId, Written>,
    /// Per source IP: (minute, dials in it).
    budget: HashMap<IpAddr, (u64, u32)>,
}

/// Verifies announced addresses by dialling back, and records check-ins.
pub struct Verifier {
    /// Told every verified address set, so the mesh hands out only those.
    mesh: std::sync::OnceLock<distsoc_net::mesh::MeshHandle>,
    cfg: VerifyConfig,
    transport: Transport,
    store: AnchorStore,
    counters: Arc<Counters>,
    slots: Arc<Semaphore>,
    tables: Mutex<Tables>,
    started: Instant,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Verifier {
    /// The mesh driver to tell about verified addresses (once).
    pub fn set_mesh(&self, mesh: distsoc_net::mesh::MeshHandle) {
        let _ = self.mesh.set(mesh);
    }

    /// Binds the dial-back endpoint on `bind_ip` (the anchor's listen IP),
    /// port 0, with a fresh random identity. Inside a tokio runtime.
    pub fn start(
        cfg: VerifyConfig,
        bind_ip: IpAddr,
        store: AnchorStore,
        counters: Arc<Counters>,
    ) -> Result<Self, TransportError> {
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let tcfg = TransportConfig {
            listen: SocketAddr::new(bind_ip, 0),
            roles: vec![Role::Node],
            agent: concat!("distsoc-anchor-verifier/", env!("CARGO_PKG_VERSION")).to_string(),
            max_connections: cfg.max_concurrent.max(1).saturating_add(4),
            hello_timeout: cfg.timeout,
            idle_timeout: cfg.timeout.max(Duration::from_secs(1)),
            keep_alive: Duration::ZERO,
            close_timeout: Duration::from_millis(200),
            ..TransportConfig::default()
        };
        // The dial-back endpoint serves nothing: no handler is registered,
        // so every request is answered unknownMessage.
        let router = Router::new(Arc::new(()), "an address verification probe");
        let transport = Transport::bind(&key, tcfg, Arc::new(router))?;
        Ok(Self {
            mesh: std::sync::OnceLock::new(),
            slots: Arc::new(Semaphore::new(cfg.max_concurrent.max(1))),
            cfg,
            transport,
            store,
            counters,
            tables: Mutex::new(Tables::default()),
            started: Instant::now(),
        })
    }

    /// Closes the dial-back endpoint.
    pub async fn close(&self) {
        self.transport.close().await;
    }

    /// A connection completed its Hello: verify and record its check-in in
    /// the background (inbound connections that announced a dialable
    /// listen address only).
    pub fn on_connected(self: &Arc<Self>, info: &PeerInfo) {
        if info.direction != Direction::Inbound {
            return;
        }
        let observed = info.remote.ip();
        let mut targets: Vec<SocketAddr> = Vec::new();
        for a in &info.listen_addresses {
            match dial_target(*a, observed) {
                Ok(t) if !targets.contains(&t) => targets.push(t),
                Ok(_) => {}
                Err(why) => {
                    debug!(peer = %info.node_id, addr = %a, ?why, "announced address not dialled");
                }
            }
            if targets.len() >= self.cfg.max_addrs {
                break;
            }
        }
        if targets.is_empty() {
            // No listen address (or none on its own IP): not checked in,
            // never handed out.
            return;
        }
        let is_anchor = info.roles.contains(&Role::Anchor);
        let this = self.clone();
        let node = info.node_id;
        tokio::spawn(async move {
            this.check_in(node, canonical(observed), targets, is_anchor)
                .await;
        });
    }

    fn minute(&self) -> u64 {
        self.started.elapsed().as_secs() / 60
    }

    /// Takes one dial from `source`'s per-minute budget.
    fn take_budget(&self, t: &mut Tables, source: IpAddr) -> bool {
        let minute = self.minute();
        if t.budget.len() >= MAX_TABLE {
            t.budget.retain(|_, (m, _)| *m == minute);
        }
        let entry = t.budget.entry(source).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.cfg.dials_per_ip_per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }

    async fn check_in(
        &self,
        node: NodeId,
        source: IpAddr,
        targets: Vec<SocketAddr>,
        is_anchor: bool,
    ) {
        let now = Instant::now();
        let mut verified: Vec<(SocketAddr, u64)> = Vec::new();
        let mut to_dial = Vec::new();
        {
            let mut t = lock(&self.tables);
            for a in &targets {
                match t.verdicts.get(&(node, *a)) {
                    Some(v) if v.ok && now.duration_since(v.at) < self.cfg.cache_ttl => {
                        verified.push((*a, v.at_ms));
                    }
                    Some(v) if !v.ok && now.duration_since(v.at) < self.cfg.retry_after => {}
                    _ => to_dial.push(*a),
                }
            }
            if !to_dial.is_empty() && !t.inflight.insert(node) {
                // Another task is verifying this identity.
                to_dial.clear();
            }
        }
        if !to_dial.is_empty() {
            for a in to_dial {
                let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                    debug!(peer = %node, "all dial-back slots busy");
                    break;
                };
                if !self.take_budget(&mut lock(&self.tables), source) {
                    debug!(peer = %node, %source, "dial-back budget of this IP used up");
                    break;
                }
                let ok = self.dial(node, a).await;
                drop(slot);
                let verdict = Verdict {
                    ok,
                    at: Instant::now(),
                    at_ms: now_ms(),
                };
                {
                    let mut t = lock(&self.tables);
                    if t.verdicts.len() >= MAX_TABLE {
                        let (ttl, retry) = (self.cfg.cache_ttl, self.cfg.retry_after);
                        let at = Instant::now();
                        t.verdicts.retain(|_, v| {
                            at.duration_since(v.at) < if v.ok { ttl } else { retry }
                        });
                    }
                    if t.verdicts.len() < MAX_TABLE {
                        t.verdicts.insert((node, a), verdict);
                    }
                }
                if ok {
                    verified.push((a, verdict.at_ms));
                }
            }
            lock(&self.tables).inflight.remove(&node);
        }
        if verified.is_empty() {
            return;
        }
        // Announced order, then coalesce.
        verified.sort_by_key(|(a, _)| targets.iter().position(|t| t == a));
        let addrs: Vec<SocketAddr> = verified.iter().map(|(a, _)| *a).collect();
        if let Some(mesh) = self.mesh.get() {
            mesh.peer_verified(node, addrs.clone());
        }
        let verified_at = verified.iter().map(|(_, at)| *at).min().unwrap_or(0);
        {
            let mut t = lock(&self.tables);
            let now = Instant::now();
            if let Some(w) = t.written.get(&node) {
                if w.addrs == addrs
                    && w.is_anchor == is_anchor
                    && now.duration_since(w.at) < self.cfg.write_interval
                {
                    return;
                }
            }
            if t.written.len() >= MAX_TABLE {
                let interval = self.cfg.write_interval;
                t.written.retain(|_, w| now.duration_since(w.at) < interval);
            }
            t.written.insert(
                node,
                Written {
                    at: now,
                    addrs: addrs.clone(),
                    is_anchor,
                },
            );
        }
        match self
            .store
            .check_in_verified(node, &addrs, is_anchor, now_ms(), verified_at)
            .await
        {
            Ok(()) => {
                self.counters
                    .checkins_written
                    .fetch_add(1, Ordering::Relaxed);
                debug!(peer = %node, addrs = addrs.len(), "checked in (verified)");
            }
            Err(e) => {
                lock(&self.tables).written.remove(&node);
                debug!(peer = %node, error = %e, "check-in not recorded");
            }
        }
    }

    /// Dials `node` at `addr` with its key pinned and runs Hello; closes.
    async fn dial(&self, node: NodeId, addr: SocketAddr) -> bool {
        let result =
            tokio::time::timeout(self.cfg.timeout, self.transport.connect(node, addr)).await;
        let ok = match result {
            Ok(Ok(peer)) => {
                // The endpoint keeps one connection per peer: make sure
                // this one is the connection to `addr`.
                let same = canonical(peer.remote_address().ip()) == canonical(addr.ip())
                    && peer.remote_address().port() == addr.port();
                peer.close();
                same
            }
            Ok(Err(e)) => {
                debug!(peer = %node, %addr, error = %e, "dial-back failed");
                false
            }
            Err(_) => {
                debug!(peer = %node, %addr, "dial-back timed out");
                false
            }
        };
        if ok {
            self.counters
                .dialbacks_verified
                .fetch_add(1, Ordering::Relaxed);
        }
        self.counters.dialbacks.fetch_add(1, Ordering::Relaxed);
        ok
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(a: &str, from: &str) -> Result<SocketAddr, NotDialled> {
        dial_target(a.parse().unwrap(), from.parse().unwrap())
    }

    #[test]
    fn only_the_clients_own_ip_is_dialled() {
        let me = "198.18.0.0"; // any public-looking source
        assert_eq!(
            t("127.0.0.1:4433", "127.0.0.1"),
            Ok("127.0.0.1:4433".parse().unwrap())
        );
        assert_eq!(
            t("0.0.0.0:4433", "127.0.0.1"),
            Ok("127.0.0.1:4433".parse().unwrap())
        );
        assert_eq!(
            t("[::]:4433", "10.1.2.3"),
            Ok("10.1.2.3:4433".parse().unwrap())
        );
        assert_eq!(
            t("[::ffff:10.1.2.3]:7", "10.1.2.3"),
            Ok("10.1.2.3:7".parse().unwrap())
        );
        assert_eq!(t("127.0.0.1:0", "127.0.0.1"), Err(NotDialled::PortZero));
        assert_eq!(t("203.0.113.5:4433", "127.0.0.1"), Err(NotDialled::Special));
        assert_eq!(
            t("203.0.113.5:4433", "203.0.113.5"),
            Err(NotDialled::Special)
        );
        assert_eq!(t("8.8.8.8:53", "127.0.0.1"), Err(NotDialled::OtherIp));
        assert_eq!(t("10.0.0.1:4433", me), Err(NotDialled::OtherIp));
        assert_eq!(t("127.0.0.2:4433", "127.0.0.1"), Err(NotDialled::OtherIp));
        assert_eq!(t("224.0.0.1:4433", "224.0.0.1"), Err(NotDialled::Special));
        assert_eq!(
            t("255.255.255.255:1", "127.0.0.1"),
            Err(NotDialled::Special)
        );
        assert_eq!(
            t("[2001:db8::1]:1", "2001:db8::1"),
            Err(NotDialled::Special)
        );
        assert_eq!(t("[ff02::1]:1", "::1"), Err(NotDialled::Special));
        assert_eq!(t("[::1]:9", "::1"), Ok("[::1]:9".parse().unwrap()));
    }
}
