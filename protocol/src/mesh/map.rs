//! The 3-hop discovery map (`schema/README.md` §13.1) and the journal of
//! changes to this node's own view, from which RoutingDiffs are derived
//! (§13.2).
//!
//! - hop 1: this node's established connections, with the addresses each
//!   peer *advertised* (never an observed address), its role and slot class;
//! - hop 2: what the peers report as their hop 1, kept per reporting peer
//!   (full ids, first advertised address, anchor flag) with a reference
//!   count per id;
//! - hop 3: what the peers report as their hop 2, as fingerprints
//!   ([`super::hop3`]).
//!
//! The view this node reports is (hop 1, hop 2 minus hop 1 and itself).

use std::collections::HashMap;
use std::net::SocketAddr;

use super::hop3::{Fingerprinter, FpSet, Union};
use crate::ids::NodeId;
use crate::messages::common::{PeerAddress, SocketAddress};

/// Most entries of one peer's reported hop 1 that are kept (the schema's
/// `Hop1Entry` list bound); more are dropped.
pub const MAX_REPORTED_HOP1: usize = 1024;
/// Most entries of one peer's reported hop 2 that are kept; more are dropped.
pub const MAX_REPORTED_HOP2: usize = 65_536;

/// A slot class: why this node holds a connection (§13.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotClass {
    /// A social slot: mutual follow, audience, follow or sync partner.
    Social,
    /// A wide slot chosen by the Kademlia bucket rule.
    Wide,
    /// A wide slot held by an anchor.
    Anchor,
    /// The peer dialled this node and holds none of its slots.
    Inbound,
}

impl SlotClass {
    /// The class's name as the CLI and the metrics print it.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotClass::Social => "social",
            SlotClass::Wide => "wide",
            SlotClass::Anchor => "anchor",
            SlotClass::Inbound => "inbound",
        }
    }

    /// Wide and anchor slots are reported with `isWide`.
    pub fn is_wide(self) -> bool {
        matches!(self, SlotClass::Wide | SlotClass::Anchor)
    }
}

/// A direct (hop-1) peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop1Peer {
    /// Addresses the peer advertised in Hello (at most 8; may be empty).
    pub addresses: Vec<SocketAddr>,
    /// The peer declared the anchor role.
    pub is_anchor: bool,
    /// Which slot it holds.
    pub class: SlotClass,
}

/// A socket address in 19 bytes (IPv4 stored mapped into IPv6), so a
/// peer's reported hop 1 costs ~54 bytes per entry instead of ~80.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedAddr {
    ip: [u8; 16],
    port: u16,
    v4: bool,
}

impl From<SocketAddr> for PackedAddr {
    fn from(a: SocketAddr) -> Self {
        match a {
            SocketAddr::V4(v4) => PackedAddr {
                ip: v4.ip().to_ipv6_mapped().octets(),
                port: v4.port(),
                v4: true,
            },
            SocketAddr::V6(v6) => PackedAddr {
                ip: v6.ip().octets(),
                port: v6.port(),
                v4: false,
            },
        }
    }
}

impl From<PackedAddr> for SocketAddr {
    fn from(p: PackedAddr) -> Self {
        let v6 = std::net::Ipv6Addr::from(p.ip);
        match (p.v4, v6.to_ipv4_mapped()) {
            (true, Some(v4)) => SocketAddr::from((v4, p.port)),
            _ => SocketAddr::from((v6, p.port)),
        }
    }
}

/// One entry of a peer's reported hop 1 (this node's hop 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported {
    addr: Option<PackedAddr>,
    pub(crate) is_anchor: bool,
}

impl Reported {
    pub(crate) fn new(addr: Option<SocketAddr>, is_anchor: bool) -> Self {
        Reported {
            addr: addr.map(PackedAddr::from),
            is_anchor,
        }
    }

    /// The first address the node advertised, as reported.
    pub(crate) fn addr(&self) -> Option<SocketAddr> {
        self.addr.map(SocketAddr::from)
    }
}

/// A peer's reported hop 1: a vector sorted by id (a third of a hash map's
/// memory at ~100 entries; lookups by binary search).
#[derive(Debug, Clone, Default)]
pub(crate) struct ReportedHop1 {
    entries: Vec<(NodeId, Reported)>,
}

impl ReportedHop1 {
    fn pos(&self, id: &NodeId) -> Result<usize, usize> {
        self.entries.binary_search_by(|(x, _)| x.0.cmp(&id.0))
    }

    pub(crate) fn get(&self, id: &NodeId) -> Option<&Reported> {
        self.pos(id).ok().map(|i| &self.entries[i].1)
    }

    pub(crate) fn get_mut(&mut self, id: &NodeId) -> Option<&mut Reported> {
        match self.pos(id) {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    pub(crate) fn insert(&mut self, id: NodeId, rep: Reported) {
        match self.pos(&id) {
            Ok(i) => self.entries[i].1 = rep,
            Err(i) => self.entries.insert(i, (id, rep)),
        }
    }

    pub(crate) fn remove(&mut self, id: &NodeId) -> Option<Reported> {
        self.pos(id).ok().map(|i| self.entries.remove(i).1)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&NodeId, &Reported)> {
        self.entries.iter().map(|(x, r)| (x, r))
    }

    fn bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(NodeId, Reported)>()
    }

    fn shrink(&mut self) {
        self.entries.shrink_to_fit();
    }
}

impl IntoIterator for ReportedHop1 {
    type Item = (NodeId, Reported);
    type IntoIter = std::vec::IntoIter<(NodeId, Reported)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// Everything one peer has reported.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerReport {
    pub(crate) hop1: ReportedHop1,
    pub(crate) hop2: FpSet,
}

#[derive(Debug, Clone, Copy)]
struct Hop2Index {
    count: u16,
    is_anchor: bool,
}

/// Where a node is in the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// This node itself.
    Me,
    /// A direct peer.
    Hop1(Hop1Peer),
    /// Reported by `reporter` (a direct peer), with its first advertised
    /// address if it had one.
    Hop2 {
        /// A direct peer that reports the node as its hop 1.
        reporter: NodeId,
        /// The node's first advertised address, as reported.
        addr: Option<SocketAddr>,
        /// The node declared the anchor role.
        is_anchor: bool,
    },
    /// Reported (by fingerprint) by these direct peers as their hop 2; may
    /// be a fingerprint collision.
    Hop3 {
        /// Direct peers whose hop 2 holds the fingerprint.
        reporters: Vec<NodeId>,
    },
}

impl Found {
    /// The hop distance: 0 for this node.
    pub fn hops(&self) -> u8 {
        match self {
            Found::Me => 0,
            Found::Hop1(_) => 1,
            Found::Hop2 { .. } => 2,
            Found::Hop3 { .. } => 3,
        }
    }
}

/// A change of this node's view, journaled for the next diffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Layer {
    Hop1,
    Hop2,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct JournalEvent {
    pub(crate) layer: Layer,
    pub(crate) id: NodeId,
    /// Whether the id was in that layer of the view just before the event.
    pub(crate) present_before: bool,
}

/// Sizes of the map, for `distsoc-node map` and the simulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapStats {
    /// Direct peers.
    pub hop1: usize,
    /// Unique hop-2 nodes (not me, not hop 1).
    pub hop2: usize,
    /// Unique hop-3 fingerprints (union of the peers' reported hop 2, at the
    /// last filter rebuild; includes hop-1/hop-2 nodes the peers report).
    pub hop3: usize,
    /// Fingerprints kept over all peers (before de-duplication).
    pub hop3_raw: usize,
    /// Approximate heap bytes of the map.
    pub bytes: usize,
}

/// The map of one node.
#[derive(Debug)]
pub struct Map {
    me: NodeId,
    hop1: HashMap<NodeId, Hop1Peer>,
    pub(crate) reports: HashMap<NodeId, PeerReport>,
    hop2: HashMap<NodeId, Hop2Index>,
    union: Union,
    pub(crate) fingerprint: Fingerprinter,
    /// View changes journaled since the start (for the amplification check).
    pub(crate) logged: u64,
    pub(crate) journal: Vec<JournalEvent>,
    /// Journal positions already removed from the front.
    pub(crate) journal_base: u64,
}

impl Map {
    /// An empty map of `me`; `fp_key` keys the hop-3 fingerprints.
    pub fn new(me: NodeId, fp_key: [u8; 40]) -> Self {
        Map {
            me,
            hop1: HashMap::new(),
            reports: HashMap::new(),
            hop2: HashMap::new(),
            union: Union::default(),
            fingerprint: Fingerprinter::new(fp_key),
            journal: Vec::new(),
            journal_base: 0,
            logged: 0,
        }
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    fn in_view_hop2(&self, id: &NodeId) -> bool {
        *id != self.me && !self.hop1.contains_key(id) && self.hop2.contains_key(id)
    }

    fn log(&mut self, layer: Layer, id: NodeId, present_before: bool) {
        self.logged += 1;
        self.journal.push(JournalEvent {
            layer,
            id,
            present_before,
        });
    }

    /// The journal position after the last event.
    pub(crate) fn journal_end(&self) -> u64 {
        self.journal_base + self.journal.len() as u64
    }

    /// Drop journal events before `pos` (every peer is past them).
    pub(crate) fn truncate_journal(&mut self, pos: u64) {
        let n = pos
            .saturating_sub(self.journal_base)
            .min(self.journal.len() as u64) as usize;
        self.journal.drain(..n);
        self.journal_base += n as u64;
        if self.journal.capacity() > 4 * self.journal.len() + 256 {
            self.journal.shrink_to(2 * self.journal.len() + 64);
        }
    }

    /// A peer connected (or its addresses or class changed).
    pub fn set_hop1(&mut self, id: NodeId, peer: Hop1Peer) {
        if id == self.me {
            return;
        }
        let was_hop2 = self.in_view_hop2(&id);
        match self.hop1.insert(id, peer.clone()) {
            Some(old) if old == peer => {}
            Some(_) => self.log(Layer::Hop1, id, true),
            None => {
                self.log(Layer::Hop1, id, false);
                self.reports.entry(id).or_default();
                if was_hop2 {
                    self.log(Layer::Hop2, id, true);
                }
            }
        }
    }

    /// A peer disconnected: it leaves hop 1 and everything it reported goes.
    pub fn remove_hop1(&mut self, id: &NodeId) {
        if self.hop1.remove(id).is_none() {
            return;
        }
        self.log(Layer::Hop1, *id, true);
        if let Some(report) = self.reports.remove(id) {
            self.union.note_removed(report.hop2.len());
            for (x, _) in report.hop1 {
                self.unref_hop2(&x);
            }
        }
        if self.in_view_hop2(id) {
            self.log(Layer::Hop2, *id, false);
        }
    }

    fn ref_hop2(&mut self, x: NodeId, is_anchor: bool) {
        let visible_before = self.in_view_hop2(&x);
        let e = self.hop2.entry(x).or_insert(Hop2Index {
            count: 0,
            is_anchor,
        });
        e.count = e.count.saturating_add(1);
        e.is_anchor |= is_anchor;
        if !visible_before && self.in_view_hop2(&x) {
            self.log(Layer::Hop2, x, false);
        }
    }

    fn unref_hop2(&mut self, x: &NodeId) {
        let visible_before = self.in_view_hop2(x);
        if let Some(e) = self.hop2.get_mut(x) {
            e.count = e.count.saturating_sub(1);
            if e.count == 0 {
                self.hop2.remove(x);
            }
        }
        if visible_before && !self.in_view_hop2(x) {
            self.log(Layer::Hop2, *x, true);
        }
    }

    /// Peer `from` reports `x` in its hop 1 (added or address changed).
    /// Returns false if dropped (unknown peer, self-report, or bound).
    pub(crate) fn report_hop1(&mut self, from: &NodeId, x: NodeId, rep: Reported) -> bool {
        if x == *from {
            return false;
        }
        let Some(report) = self.reports.get_mut(from) else {
            return false;
        };
        if let Some(r) = report.hop1.get_mut(&x) {
            *r = rep;
            return true;
        }
        if report.hop1.len() >= MAX_REPORTED_HOP1 {
            return false;
        }
        report.hop1.insert(x, rep);
        if x != self.me {
            self.ref_hop2(x, rep.is_anchor);
        }
        true
    }

    /// Peer `from` no longer reports `x` in its hop 1.
    pub(crate) fn unreport_hop1(&mut self, from: &NodeId, x: &NodeId) {
        let removed = self
            .reports
            .get_mut(from)
            .and_then(|r| r.hop1.remove(x))
            .is_some();
        if removed && *x != self.me {
            self.unref_hop2(x);
        }
    }

    /// Peer `from` reports changes of its hop 2 (this node's hop 3).
    pub(crate) fn report_hop2(&mut self, from: &NodeId, added: &[NodeId], removed: &[NodeId]) {
        let fp = |id: &NodeId| self.fingerprint.fp(id);
        let add: Vec<u32> = added.iter().filter(|x| **x != self.me).map(fp).collect();
        let rem: Vec<u32> = removed.iter().map(fp).collect();
        let Some(report) = self.reports.get_mut(from) else {
            return;
        };
        let before = report.hop2.len();
        let newly = report.hop2.apply(add.clone(), rem, MAX_REPORTED_HOP2);
        let gone = (before + newly).saturating_sub(report.hop2.len());
        for x in add {
            if report.hop2.contains(x) {
                self.union.note_insert(x);
            }
        }
        self.union.note_removed(gone);
        if self.union.needs_rebuild() {
            self.rebuild_union();
        }
    }

    /// Release spare capacity of `from`'s report (after a full map sync).
    pub(crate) fn compact_report(&mut self, from: &NodeId) {
        if let Some(r) = self.reports.get_mut(from) {
            r.hop1.shrink();
        }
    }

    /// Would applying `d` take `from`'s report over its bounds (§13.2)?
    pub(crate) fn diff_overflows(
        &self,
        from: &NodeId,
        d: &crate::messages::discovery::RoutingDiff,
    ) -> bool {
        use crate::messages::discovery::{Hop1ChangeKind, Hop2ChangeKind};
        let Some(r) = self.reports.get(from) else {
            return false;
        };
        let new1 = d
            .hop1_changes
            .iter()
            .filter(|c| {
                c.kind != Hop1ChangeKind::Removed
                    && c.node_id != *from
                    && r.hop1.get(&c.node_id).is_none()
            })
            .count();
        let new2 = d
            .hop2_changes
            .iter()
            .filter(|c| {
                c.kind == Hop2ChangeKind::Added
                    && c.node_id != self.me
                    && !r.hop2.contains(self.fingerprint.fp(&c.node_id))
            })
            .count();
        r.hop1.len() + new1 > MAX_REPORTED_HOP1 || r.hop2.len() + new2 > MAX_REPORTED_HOP2
    }

    /// Forget everything `from` reported (before a fresh map sync).
    pub(crate) fn clear_report(&mut self, from: &NodeId) {
        if let Some(report) = self.reports.get_mut(from) {
            let old = std::mem::take(report);
            self.union.note_removed(old.hop2.len());
            for (x, _) in old.hop1 {
                if x != self.me {
                    self.unref_hop2(&x);
                }
            }
        }
    }

    fn rebuild_union(&mut self) {
        self.union.rebuild(self.reports.values().map(|r| &r.hop2));
    }

    /// Where `id` is, nearest hop first. O(1) for hop 1, hop 2 and a hop-3
    /// miss; a hop-3 hit is confirmed in each peer's sorted list.
    pub fn find(&self, id: &NodeId) -> Option<Found> {
        if *id == self.me {
            return Some(Found::Me);
        }
        if let Some(p) = self.hop1.get(id) {
            return Some(Found::Hop1(p.clone()));
        }
        if let Some(e) = self.hop2.get(id) {
            let mut best: Option<(NodeId, Option<SocketAddr>)> = None;
            for (peer, report) in &self.reports {
                if let Some(r) = report.hop1.get(id) {
                    // Prefer a report with an address, then the smaller id.
                    let better = match best {
                        None => true,
                        Some((b, addr)) => {
                            (r.addr.is_some(), std::cmp::Reverse(*peer))
                                > (addr.is_some(), std::cmp::Reverse(b))
                        }
                    };
                    if better {
                        best = Some((*peer, r.addr()));
                    }
                }
            }
            if let Some((reporter, addr)) = best {
                return Some(Found::Hop2 {
                    reporter,
                    addr,
                    is_anchor: e.is_anchor,
                });
            }
        }
        let fp = self.fingerprint.fp(id);
        if !self.union.may_contain(fp) {
            return None;
        }
        let mut reporters: Vec<NodeId> = self
            .reports
            .iter()
            .filter(|(_, r)| r.hop2.contains(fp))
            .map(|(p, _)| *p)
            .collect();
        if reporters.is_empty() {
            return None;
        }
        reporters.sort_by_key(|p| p.0);
        Some(Found::Hop3 { reporters })
    }

    /// The direct peers.
    pub fn hop1(&self) -> impl Iterator<Item = (&NodeId, &Hop1Peer)> {
        self.hop1.iter()
    }

    /// A direct peer.
    pub fn peer(&self, id: &NodeId) -> Option<&Hop1Peer> {
        self.hop1.get(id)
    }

    /// Hop-2 nodes of the view (not me, not hop 1) with their anchor flag.
    pub fn hop2_view(&self) -> impl Iterator<Item = (NodeId, bool)> + '_ {
        self.hop2
            .iter()
            .filter(|(id, _)| **id != self.me && !self.hop1.contains_key(*id))
            .map(|(id, e)| (*id, e.is_anchor))
    }

    /// Every (reporter, node, address, anchor) of the peers' reported hop 1.
    pub(crate) fn reported_hop1(&self) -> impl Iterator<Item = (&NodeId, &NodeId, &Reported)> {
        self.reports
            .iter()
            .flat_map(|(p, r)| r.hop1.iter().map(move |(x, rep)| (p, x, rep)))
    }

    /// Is the id in hop 2 of the view now?
    pub(crate) fn view_has(&self, layer: Layer, id: &NodeId) -> bool {
        match layer {
            Layer::Hop1 => self.hop1.contains_key(id),
            Layer::Hop2 => self.in_view_hop2(id),
        }
    }

    /// The hop-2 anchor flag of an id in the view.
    pub(crate) fn hop2_is_anchor(&self, id: &NodeId) -> bool {
        self.hop2.get(id).is_some_and(|e| e.is_anchor)
    }

    /// The map as a PeerAddress of a hop-1 peer.
    pub fn peer_address(&self, id: &NodeId) -> Option<PeerAddress> {
        self.hop1.get(id).map(|p| PeerAddress {
            node_id: *id,
            addresses: p.addresses.iter().map(|a| SocketAddress(*a)).collect(),
            is_anchor: p.is_anchor,
            last_seen_ms: 0,
        })
    }

    /// Sizes and memory.
    pub fn stats(&mut self) -> MapStats {
        if self.union.needs_rebuild() {
            self.rebuild_union();
        }
        let reports: usize = self
            .reports
            .values()
            .map(|r| r.hop1.bytes() + r.hop2.bytes() + std::mem::size_of::<PeerReport>() + 33)
            .sum();
        let hop2 = self.hop2.capacity() * (std::mem::size_of::<(NodeId, Hop2Index)>() + 1);
        let hop1 = self.hop1.capacity() * (std::mem::size_of::<(NodeId, Hop1Peer)>() + 1)
            + self
                .hop1
                .values()
                .map(|p| p.addresses.capacity() * std::mem::size_of::<SocketAddr>())
                .sum::<usize>();
        MapStats {
            hop1: self.hop1.len(),
            hop2: self.hop2_view().count(),
            hop3: self.union.unique,
            hop3_raw: self.reports.values().map(|r| r.hop2.len()).sum(),
            bytes: reports
                + hop2
                + hop1
                + self.union.bytes()
                + self.journal.capacity() * std::mem::size_of::<JournalEvent>(),
        }
    }

    /// Does `from` have a report (is it a hop-1 peer)?
    pub(crate) fn has_report(&self, from: &NodeId) -> bool {
        self.reports.contains_key(from)
    }
}
