//! Connection slots: the endpoint's connection cap, the per-IP cap, the
//! eviction of idle slots when the endpoint is full, and the per-IP share of
//! the frame budget.
//!
//! Every connection, incoming or outgoing, holds a [`SlotGuard`] from the
//! moment it is accepted (or dialled) until its task ends. Incoming
//! connections are also counted per remote IP. When every slot is taken, a
//! new incoming connection *evicts* an incoming connection that is idle: no
//! handler running, no complete request for at least `grace` (connections
//! that never sent a request first, then the longest idle). The evicted
//! connection is closed with [`CLOSE_IDLE_EVICTED`](super::CLOSE_IDLE_EVICTED).
//! So a peer cannot hold slots with connections that do nothing, and an
//! honest client always gets in unless every slot is busy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quinn::VarInt;
use tracing::debug;

use super::frame_io::Pool;
use super::lock;

/// Incoming connections from one IP being refused (handshake, then a close
/// with a code) at once; beyond this, further ones are refused without a
/// handshake.
const MAX_REFUSING_PER_IP: usize = 4;

/// What a connection did, for eviction.
#[derive(Debug)]
pub(crate) struct Activity {
    /// Complete requests (and pushes) received.
    requests: AtomicU64,
    /// Handlers running.
    inflight: AtomicUsize,
    /// Last request received or handler finished, ms since the table's epoch.
    last_ms: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new(epoch: Instant) -> Self {
        let activity = Self {
            requests: AtomicU64::new(0),
            inflight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            epoch,
        };
        activity.touch();
        activity
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A complete frame was read; its handler runs until the guard drops.
    pub(crate) fn request(self: &Arc<Self>) -> RequestGuard {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.inflight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        RequestGuard(self.clone())
    }

    fn idle_for(&self) -> Option<Duration> {
        (self.inflight.load(Ordering::Relaxed) == 0).then(|| {
            let last = self.last_ms.load(Ordering::Relaxed);
            Duration::from_millis(self.now_ms().saturating_sub(last))
        })
    }
}

/// One request being handled; marks the end of it when dropped.
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

struct Slot {
    /// The remote IP of an incoming connection (`None`: we dialled).
    ip: Option<IpAddr>,
    /// Set once the QUIC handshake is done (only then can it be evicted).
    conn: Option<quinn::Connection>,
    activity: Arc<Activity>,
}

struct IpState {
    conns: usize,
    refusing: usize,
    budget: Pool,
}

#[derive(Default)]
struct Table {
    next: u64,
    slots: HashMap<u64, Slot>,
    ips: HashMap<IpAddr, IpState>,
}

/// The endpoint's slot table.
pub(crate) struct Slots {
    table: Mutex<Table>,
    max_total: usize,
    max_per_ip: usize,
    grace: Duration,
    ip_budget: usize,
    epoch: Instant,
}

/// Why an incoming connection gets no slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its IP holds `max_per_ip` connections; `tell` = whether to complete
    /// the handshake to close with a code (bounded per IP).
    PerIp { tell: bool },
    /// Every slot is busy and none is idle enough to evict.
    Full,
}

/// A connection's slot; freed when dropped.
pub(crate) struct SlotGuard {
    slots: Arc<Slots>,
    id: u64,
    pub(crate) activity: Arc<Activity>,
    /// The per-IP frame budget (a private pool for dialled connections).
    pub(crate) ip_budget: Pool,
}

impl SlotGuard {
    /// Records the established connection (it becomes evictable).
    pub(crate) fn attach(&self, conn: &quinn::Connection) {
        if let Some(slot) = lock(&self.slots.table).slots.get_mut(&self.id) {
            slot.conn = Some(conn.clone());
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut table = lock(&self.slots.table);
        if let Some(slot) = table.slots.remove(&self.id) {
            if let Some(ip) = slot.ip {
                table.release_ip(ip);
            }
        }
    }
}

/// An over-the-cap incoming connection being told so; frees its refusal
/// count when dropped.
pub(crate) struct RefusalGuard {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Drop for RefusalGuard {
    fn drop(&mut self) {
        let mut table = lock(&self.slots.table);
        if let Some(state) = table.ips.get_mut(&self.ip) {
            state.refusing = state.refusing.saturating_sub(1);
        }
        table.forget_ip_if_unused(self.ip);
    }
}

impl Table {
    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(state) = self.ips.get_mut(&ip) {
            state.conns = state.conns.saturating_sub(1);
        }
        self.forget_ip_if_unused(ip);
    }

    fn forget_ip_if_unused(&mut self, ip: IpAddr) {
        if self
            .ips
            .get(&ip)
            .is_some_and(|s| s.conns == 0 && s.refusing == 0)
        {
            self.ips.remove(&ip);
        }
    }

    /// Closes and removes the best eviction candidate; `false` if none.
    fn evict_one(&mut self, grace: Duration) -> bool {
        let victim = self
            .slots
            .iter()
            .filter(|(_, s)| s.ip.is_some() && s.conn.is_some())
            .filter_map(|(id, s)| {
                let idle = s.activity.idle_for()?;
                (idle >= grace).then(|| {
                    let never = s.activity.requests.load(Ordering::Relaxed) == 0;
                    // Never-used connections first, then the longest idle.
                    ((never, idle), *id)
                })
            })
            .max_by_key(|(key, _)| *key)
            .map(|(_, id)| id);
        let Some(id) = victim else {
            return false;
        };
        if let Some(slot) = self.slots.remove(&id) {
            if let Some(conn) = &slot.conn {
                debug!(remote = %conn.remote_address(), "endpoint full: evicting an idle connection");
                conn.close(
                    VarInt::from_u32(super::CLOSE_IDLE_EVICTED),
                    b"idle connection evicted",
                );
            }
            if let Some(ip) = slot.ip {
                self.release_ip(ip);
            }
        }
        true
    }
}

impl Slots {
    pub(crate) fn new(
        max_total: usize,
        max_per_ip: usize,
        grace: Duration,
        ip_budget: usize,
    ) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            max_total,
            max_per_ip,
            grace,
            ip_budget,
            epoch: Instant::now(),
        }
    }

    fn insert(self: &Arc<Self>, table: &mut Table, ip: Option<IpAddr>) -> SlotGuard {
        let id = table.next;
        table.next += 1;
        let activity = Arc::new(Activity::new(self.epoch));
        table.slots.insert(
            id,
            Slot {
                ip,
                conn: None,
                activity: activity.clone(),
            },
        );
        let ip_budget = match ip {
            Some(ip) => {
                let budget = self.ip_budget;
                let state = table.ips.entry(ip).or_insert_with(|| IpState {
                    conns: 0,
                    refusing: 0,
                    budget: Pool::new(budget),
                });
                state.conns += 1;
                state.budget.clone()
            }
            None => Pool::new(self.ip_budget),
        };
        SlotGuard {
            slots: self.clone(),
            id,
            activity,
            ip_budget,
        }
    }

    /// A slot for an incoming connection from `ip`, evicting an idle one if
    /// the endpoint is full.
    pub(crate) fn admit_incoming(self: &Arc<Self>, ip: IpAddr) -> Result<SlotGuard, Refusal> {
        let mut table = lock(&self.table);
        if let Some(state) = table.ips.get_mut(&ip) {
            if state.conns >= self.max_per_ip {
                let tell = state.refusing < MAX_REFUSING_PER_IP;
                return Err(Refusal::PerIp { tell });
            }
        }
        if table.slots.len() >= self.max_total && !table.evict_one(self.grace) {
            return Err(Refusal::Full);
        }
        Ok(self.insert(&mut table, Some(ip)))
    }

    /// Whether a connection from `ip` should prove its address (QUIC Retry)
    /// before it is given a slot: when the endpoint is at least three
    /// quarters full, or `ip` holds at least half its cap. A spoofed source
    /// address then can neither evict anyone nor use up an IP's share.
    pub(crate) fn under_pressure(&self, ip: IpAddr) -> bool {
        let table = lock(&self.table);
        table.slots.len().saturating_mul(4) >= self.max_total.saturating_mul(3)
            || table
                .ips
                .get(&ip)
                .is_some_and(|s| s.conns.saturating_mul(2) >= self.max_per_ip)
    }

    /// Counts an over-the-cap connection from `ip` that is being told so.
    pub(crate) fn refusing(self: &Arc<Self>, ip: IpAddr) -> RefusalGuard {
        let budget = self.ip_budget;
        lock(&self.table)
            .ips
            .entry(ip)
            .or_insert_with(|| IpState {
                conns: 0,
                refusing: 0,
                budget: Pool::new(budget),
            })
            .refusing += 1;
        RefusalGuard {
            slots: self.clone(),
            ip,
        }
    }

    /// A slot for a connection we dial (evicting an idle incoming one if
    /// the endpoint is full); `None` if every slot is busy.
    pub(crate) fn admit_outgoing(self: &Arc<Self>) -> Option<SlotGuard> {
        let mut table = lock(&self.table);
        if table.slots.len() >= self.max_total && !table.evict_one(self.grace) {
            return None;
        }
        Some(self.insert(&mut table, None))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_cap_and_total_cap() {
        let slots = Arc::new(Slots::new(3, 2, Duration::from_secs(60), 1024));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = slots.admit_incoming(a).unwrap();
        let _a2 = slots.admit_incoming(a).unwrap();
        assert_eq!(
            slots.admit_incoming(a).err(),
            Some(Refusal::PerIp { tell: true })
        );
        let _b1 = slots.admit_incoming(b).unwrap();
        // Full, and nothing is idle past the grace period.
        assert_eq!(slots.admit_incoming(b).err(), Some(Refusal::Full));
        assert!(slots.admit_outgoing().is_none());
        // Refusals are told only up to a bound per IP.
        let told: Vec<_> = (0..MAX_REFUSING_PER_IP)
            .map(|_| slots.refusing(a))
            .collect();
        assert_eq!(
            slots.admit_incoming(a).err(),
            Some(Refusal::PerIp { tell: false })
        );
        drop(told);
        assert!(slots.under_pressure(b), "3 of 3 slots taken");
        drop(a1);
        assert!(slots.admit_incoming(b).is_ok());
    }

    #[test]
    fn ip_state_is_forgotten_when_unused() {
        let slots = Arc::new(Slots::new(10, 10, Duration::ZERO, 1024));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!slots.under_pressure(a));
        let g = slots.admit_incoming(a).unwrap();
        let r = slots.refusing(a);
        drop(g);
        assert_eq!(lock(&slots.table).ips.len(), 1);
        drop(r);
        assert!(lock(&slots.table).ips.is_empty());
    }
}
