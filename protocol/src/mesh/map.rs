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

use std::cmp::Ordering;
use std::collections::HashMap;

use foldhash::fast::FixedState;
use std::net::SocketAddr;

use super::blocks::Blocks;
use super::chunked::{rechunk, Chunked};
use super::hop3::{Fingerprinter, FpSet, Union};
use super::reported::edit_hop1;
pub(crate) use super::reported::{Hop1Outcome, Reported, ReportedHop1};
use super::route::Hop;
use super::share::{lock, SharedReports};
use crate::ids::NodeId;
use crate::messages::common::{PeerAddress, SocketAddress};
use std::sync::Arc;

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

/// Every slot class, in declaration order (`class as usize`).
const CLASSES: [SlotClass; 4] = [
    SlotClass::Social,
    SlotClass::Wide,
    SlotClass::Anchor,
    SlotClass::Inbound,
];

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

/// Everything one peer has reported.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerReport {
    /// The report's slot: hop-2 entries name their best reporter by it.
    slot: u16,
    pub(crate) hop1: ReportedHop1,
    pub(crate) hop2: FpSet,
}

/// [`Hop2Index::best`] when the named reporter is not known (see
/// [`Map::fix_entry`]); never a slot (a map has at most a few hundred
/// peers).
const STALE: u16 = u16::MAX;

#[derive(Debug, Clone, Copy)]
struct Hop2Index {
    /// Peers that report the node.
    count: u16,
    /// Of those, the ones whose report carries an address.
    addressed: u16,
    /// The slot of the reporter [`Map::find`] names: one whose report
    /// carries an address if any does, then the smallest id; [`STALE`]
    /// when not known.
    best: u16,
    /// Whether `best`'s report carries an address for the node (kept with
    /// `best`, so ranking a reporter against it needs no lookup).
    best_addr: bool,
    is_anchor: bool,
}

/// The byte order of ids (lexicographic), comparing the first eight bytes
/// as one integer before the rest: the order `BTreeMap<NodeId, _>` and the
/// sorted reports keep, without a `memcmp` call per step.
pub(super) fn id_cmp(a: &NodeId, b: &NodeId) -> Ordering {
    let head = |x: &NodeId| {
        let mut h = [0u8; 8];
        h.copy_from_slice(&x.0[..8]);
        u64::from_be_bytes(h)
    };
    head(a).cmp(&head(b)).then_with(|| a.0[8..].cmp(&b.0[8..]))
}

/// A hop-2 key: a NodeId in the order of [`id_cmp`] (the byte order of
/// `NodeId` itself, so every walk is in id order as before), decided by the
/// first eight bytes as one integer in all but ~2⁻⁶⁴ of compares. A B-tree
/// search of hop 2 makes ~40 compares, and `NodeId`'s own (a `memcmp` call
/// each) was 2.7 % of a 10⁴-node join beside the searches themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Key(pub(crate) NodeId);

impl Key {
    /// The first eight bytes as one integer (the order's first part).
    pub(crate) fn head(&self) -> u64 {
        let mut h = [0u8; 8];
        h.copy_from_slice(&self.0 .0[..8]);
        u64::from_be_bytes(h)
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        id_cmp(&self.0, &other.0)
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Leading bits `a` and `b` share.
fn common_prefix(a: &NodeId, b: &NodeId) -> u32 {
    super::route::common_prefix_len(&a.0, &b.0)
}

/// The XOR-closest key to `target` among the keys of `set` that pass `ok`
/// (exact, in O(log n) seeks): the eligible neighbours of the pivot in key
/// order include one with the longest common prefix `L`; every eligible key
/// sharing `L` bits with the pivot then lies in the subtree with bit `L`
/// flipped, so the search continues there with that bit of the pivot
/// flipped, until the subtree holds one eligible key.
fn xor_closest<V>(
    set: &Blocks<V>,
    target: &NodeId,
    ok: impl Fn(&NodeId, &V) -> bool,
) -> Option<NodeId> {
    let mut pivot = Key(*target);
    loop {
        let below = set.prev_ok(&pivot, false, &ok);
        if below == Some(pivot.0) {
            return below;
        }
        let above = set.next_ok(&pivot, &ok);
        let (best, up) = match (below, above) {
            (None, None) => return None,
            (Some(b), None) => (b, false),
            (None, Some(a)) => (a, true),
            (Some(b), Some(a)) => {
                if common_prefix(&a, &pivot.0) > common_prefix(&b, &pivot.0) {
                    (a, true)
                } else {
                    (b, false)
                }
            }
        };
        let l = common_prefix(&best, &pivot.0);
        if l >= 255 {
            return Some(best);
        }
        // Is `best` the only eligible key of its subtree (prefix l + 1)?
        let next = if up {
            set.next_ok(&Key(best), &ok)
        } else {
            set.prev_ok(&Key(best), true, &ok)
        };
        if next.is_none_or(|k| common_prefix(&k, &best) <= l) {
            return Some(best);
        }
        pivot.0 .0[(l / 8) as usize] ^= 0x80 >> (l % 8);
    }
}

/// A table keyed by NodeId with the node's seeded hasher.
pub(crate) type IdMap<V> = HashMap<NodeId, V, FixedState>;

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
    /// Unique hop-3 fingerprints: the union of the peers' reported hop 2
    /// (includes hop-1/hop-2 nodes the peers report), refreshed when more
    /// than ~5 % stale.
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
    hop1: IdMap<Hop1Peer>,
    /// Hop-1 peers by [`SlotClass`] (`class as usize`), kept with `hop1`.
    classes: [usize; 4],
    pub(crate) reports: IdMap<PeerReport>,
    /// The peer of each report slot (`None`: free).
    slot_ids: Vec<Option<NodeId>>,
    /// The peers with a report, in id order ([`Map::best_reporter`]'s
    /// scan stops at the first that has an address for the node).
    by_id: Vec<NodeId>,
    free_slots: Vec<u16>,
    /// Hop 2 by id, in id order (the XOR-closest search walks it).
    hop2: Blocks<Hop2Index>,
    union: Union,
    pub(crate) fingerprint: Fingerprinter,
    /// Report storage shared with other meshes (simulation only).
    shared: Option<SharedReports>,
    /// View changes journaled since the start (for the amplification check).
    pub(crate) logged: u64,
    pub(crate) journal: Vec<JournalEvent>,
    /// Journal positions already removed from the front.
    pub(crate) journal_base: u64,
}

impl Map {
    /// An empty map of `me`; `fp_key` keys the hop-3 fingerprints.
    pub fn new(me: NodeId, fp_key: [u8; 40]) -> Self {
        // The tables are keyed by NodeIds a peer chooses: a seeded hasher
        // (foldhash, seed from the node's randomness) instead of SipHash.
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&fp_key[32..40]);
        let hasher = FixedState::with_seed(u64::from_le_bytes(seed));
        Map {
            me,
            hop1: HashMap::with_hasher(hasher.clone()),
            classes: [0; 4],
            reports: HashMap::with_hasher(hasher),
            slot_ids: Vec::new(),
            by_id: Vec::new(),
            free_slots: Vec::new(),
            hop2: Blocks::default(),
            union: Union::default(),
            fingerprint: Fingerprinter::new(fp_key),
            shared: None,
            journal: Vec::new(),
            journal_base: 0,
            logged: 0,
        }
    }

    /// Share report storage with other meshes of this process, with their
    /// fingerprint key (simulation only: see [`SharedReports`]). Call
    /// before anything is reported.
    pub fn share_reports(&mut self, shared: SharedReports) {
        self.fingerprint = Fingerprinter::new(shared.key());
        self.shared = Some(shared);
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The seeded hasher of this node's id-keyed tables.
    pub(crate) fn hasher(&self) -> FixedState {
        self.hop1.hasher().clone()
    }

    fn in_view_hop2(&self, id: &NodeId) -> bool {
        *id != self.me && !self.hop1.contains_key(id) && self.hop2.contains_key(&Key(*id))
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
        self.classes[peer.class as usize] += 1;
        let old = self.hop1.insert(id, peer.clone());
        if let Some(o) = &old {
            self.classes[o.class as usize] -= 1;
        }
        match old {
            Some(old) if old == peer => {}
            Some(_) => self.log(Layer::Hop1, id, true),
            None => {
                self.log(Layer::Hop1, id, false);
                if !self.reports.contains_key(&id) {
                    let slot = match self.free_slots.pop() {
                        Some(s) => s,
                        None => {
                            self.slot_ids.push(None);
                            (self.slot_ids.len() - 1) as u16
                        }
                    };
                    if let Some(x) = self.slot_ids.get_mut(slot as usize) {
                        *x = Some(id);
                    }
                    self.reports.insert(
                        id,
                        PeerReport {
                            slot,
                            ..PeerReport::default()
                        },
                    );
                    if let Err(i) = self.by_id.binary_search(&id) {
                        self.by_id.insert(i, id);
                    }
                }
                if was_hop2 {
                    self.log(Layer::Hop2, id, true);
                }
            }
        }
    }

    /// A peer disconnected: it leaves hop 1 and everything it reported goes.
    pub fn remove_hop1(&mut self, id: &NodeId) {
        let Some(old) = self.hop1.remove(id) else {
            return;
        };
        self.classes[old.class as usize] -= 1;
        self.log(Layer::Hop1, *id, true);
        if let Some(report) = self.reports.remove(id) {
            if let Ok(i) = self.by_id.binary_search(id) {
                self.by_id.remove(i);
            }
            self.union.note_removed(report.hop2.len());
            if let Some(x) = self.slot_ids.get_mut(report.slot as usize) {
                *x = None;
                self.free_slots.push(report.slot);
            }
            for (x, rep) in report.hop1.iter() {
                if *x != self.me {
                    self.unref_hop2(x, rep.addr.is_some(), report.slot);
                }
            }
        }
        if self.in_view_hop2(id) {
            self.log(Layer::Hop2, *id, false);
        }
    }

    /// How [`Map::find`] ranks a reporter of `x`: an address first, then
    /// the smaller id.
    fn rank(addr: bool, peer: NodeId) -> (bool, std::cmp::Reverse<NodeId>) {
        (addr, std::cmp::Reverse(peer))
    }

    /// After the report in `slot` changed its entry for `x` (now: whether
    /// it carries an address, `None` if it has none): keep the named
    /// reporter the best one, on the entry (its caller holds it from the
    /// change: one search of hop 2 per change). If the named one lost the
    /// node or its address, the next best is not known without a look at
    /// every report: the entry is marked [`STALE`] instead, and
    /// [`Map::find`] looks when it is asked (most such nodes are leaving
    /// and are gone before anyone asks; a look each time cost ~15 % of a
    /// simulated network's steady state).
    fn fix_entry(e: &mut Hop2Index, slot_ids: &[Option<NodeId>], slot: u16, mine: Option<bool>) {
        let (best, best_addr) = (e.best, e.best_addr);
        if best == slot {
            if mine == Some(true) {
                e.best_addr = true;
            } else {
                e.best = STALE;
            }
            return;
        }
        let me = slot_ids.get(slot as usize).copied().flatten();
        match slot_ids.get(best as usize).copied().flatten() {
            // Stale already, or the named one's slot was freed.
            None => e.best = STALE,
            Some(theirs) => {
                if let (Some(a), Some(me)) = (mine, me) {
                    if Self::rank(a, me) > Self::rank(best_addr, theirs) {
                        (e.best, e.best_addr) = (slot, a);
                    }
                }
            }
        }
    }

    /// Report `slot` now has `x` (with an address or not); keeps the named
    /// reporter the best one.
    fn ref_hop2(&mut self, x: NodeId, is_anchor: bool, addressed: bool, slot: u16) {
        // In the view's hop 2 iff in hop 2 and neither me nor hop 1: it
        // appears there iff the entry is new (one search of hop 2, which
        // also serves the named reporter).
        let direct = x == self.me || self.hop1.contains_key(&x);
        let (e, fresh) = self.hop2.entry_or_insert(Key(x), || Hop2Index {
            count: 0,
            addressed: 0,
            best: slot,
            best_addr: addressed,
            is_anchor,
        });
        e.count = e.count.saturating_add(1);
        e.addressed = e.addressed.saturating_add(u16::from(addressed));
        e.is_anchor |= is_anchor;
        // A new entry's only reporter is `slot`, named at its creation.
        if !fresh {
            Self::fix_entry(e, &self.slot_ids, slot, Some(addressed));
        }
        if fresh && !direct {
            self.log(Layer::Hop2, x, false);
        }
    }

    /// Report `slot` no longer has `x` (it had an address or not); keeps
    /// the named reporter the best one.
    fn unref_hop2(&mut self, x: &NodeId, addressed: bool, slot: u16) {
        // It leaves the view's hop 2 iff its entry goes and it is neither
        // me nor hop 1 (one search of hop 2).
        let Some(pos) = self.hop2.find(&Key(*x)) else {
            return;
        };
        let e = self.hop2.at_mut(pos);
        e.count = e.count.saturating_sub(1);
        e.addressed = e.addressed.saturating_sub(u16::from(addressed));
        if e.count > 0 {
            Self::fix_entry(e, &self.slot_ids, slot, None);
            return;
        }
        self.hop2.remove_at(pos);
        if *x != self.me && !self.hop1.contains_key(x) {
            self.log(Layer::Hop2, *x, true);
        }
    }

    /// Peer `from` reports `x` in its hop 1 (added or address changed).
    /// Returns false if dropped (unknown peer, self-report, or bound).
    #[cfg(test)]
    pub(crate) fn report_hop1(&mut self, from: &NodeId, x: NodeId, rep: Reported) -> bool {
        self.apply_hop1(from, &[(x, Some(rep))])
            .first()
            .is_some_and(|o| *o != Hop1Outcome::Ignored)
    }

    /// Peer `from` no longer reports `x` in its hop 1.
    #[cfg(test)]
    pub(crate) fn unreport_hop1(&mut self, from: &NodeId, x: &NodeId) {
        self.apply_hop1(from, &[(*x, None)]);
    }

    /// Changes of peer `from`'s reported hop 1, in order (`None`: removed);
    /// what each did (none if `from` is not a peer).
    pub(crate) fn apply_hop1(
        &mut self,
        from: &NodeId,
        ops: &[(NodeId, Option<Reported>)],
    ) -> Arc<[Hop1Outcome]> {
        let Some(report) = self.reports.get_mut(from) else {
            return Arc::from([]);
        };
        let slot = report.slot;
        let old = &report.hop1.entries;
        let (list, outcomes) = match &self.shared {
            None => {
                let (v, o) = edit_hop1(old.to_vec(), from, ops);
                let chunks = rechunk(&old.spine, &v, false, |p| Arc::from(p));
                (Chunked::from_spine(Arc::<[_]>::from(chunks)), Arc::from(o))
            }
            Some(shared) => {
                // Looked up by the borrowed change (it hashes as the stored
                // one does); copied only to be remembered.
                let key = super::share::transition_key(&old.spine, &(from, ops));
                let hit =
                    lock(&shared.hop1).get_with(&old.spine, key, |e| e.0 == *from && e.1 == ops);
                match hit {
                    Some((spine, o)) => (Chunked::from_spine(spine), o),
                    None => {
                        let (v, o) = edit_hop1(old.to_vec(), from, ops);
                        let chunks = {
                            let mut pool = lock(&shared.hop1_chunks);
                            rechunk(&old.spine, &v, true, |piece| pool.intern(piece))
                        };
                        let o: Arc<[Hop1Outcome]> = Arc::from(o);
                        let edit = (!old.is_empty()).then(|| (*from, ops.to_vec()));
                        let spine = lock(&shared.hop1).put(&old.spine, edit, chunks, o.clone());
                        (Chunked::from_spine(spine), o)
                    }
                }
            }
        };
        report.hop1.entries = list;
        // Each change keeps the named reporter of its node the best one as
        // it is made (a change that was not ignored leaves the report's
        // entry as the change says, so no lookup in the new list).
        for ((x, op), o) in ops.iter().zip(outcomes.iter()) {
            if *x == self.me {
                continue;
            }
            let has = op.is_some_and(|r| r.addr.is_some());
            match (*o, op) {
                (Hop1Outcome::Inserted, Some(rep)) => self.ref_hop2(*x, rep.is_anchor, has, slot),
                (Hop1Outcome::Updated(had), _) => {
                    if let Some(e) = self.hop2.get_mut(&Key(*x)) {
                        if had != has {
                            e.addressed = if has {
                                e.addressed.saturating_add(1)
                            } else {
                                e.addressed.saturating_sub(1)
                            };
                        }
                        Self::fix_entry(e, &self.slot_ids, slot, Some(has));
                    }
                }
                (Hop1Outcome::Removed(had), _) => self.unref_hop2(x, had, slot),
                _ => {}
            }
        }
        outcomes
    }

    /// Peer `from` reports changes of its hop 2 (this node's hop 3).
    pub(crate) fn report_hop2<'a>(
        &mut self,
        from: &NodeId,
        added: impl Iterator<Item = &'a NodeId>,
        removed: impl Iterator<Item = &'a NodeId>,
    ) {
        let fp = |id: &NodeId| self.fingerprint.fp(id);
        let Some(report) = self.reports.get_mut(from) else {
            return;
        };
        // Sized by the lists they come from (a diff's changes are filtered
        // by kind here, not copied into lists of ids first).
        let mut add: Vec<u32> = Vec::with_capacity(added.size_hint().1.unwrap_or(0));
        add.extend(added.filter(|x| **x != self.me).map(fp));
        let mut rem: Vec<u32> = Vec::with_capacity(removed.size_hint().1.unwrap_or(0));
        rem.extend(removed.map(fp));
        super::hop3::sort_fps(&mut add);
        add.dedup();
        super::hop3::sort_fps(&mut rem);
        rem.dedup();
        let before = report.hop2.len();
        let (newly, all_kept) =
            report
                .hop2
                .apply_sorted(&add, &rem, MAX_REPORTED_HOP2, self.shared.as_ref());
        let gone = (before + newly).saturating_sub(report.hop2.len());
        // The set holds exactly the additions not removed unless the bound
        // dropped some.
        let kept = if all_kept {
            super::hop3::minus(add, &rem)
        } else {
            add.retain(|&x| report.hop2.contains(x));
            add
        };
        for &x in &kept {
            self.union.note_insert(x);
        }
        self.union.note_removed(gone);
        if self.union.needs_rebuild() {
            self.rebuild_union();
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
        // Even if every change were a new addition, the bounds would hold:
        // the usual case, decided without reading the changes.
        if r.hop1.len() + d.hop1_changes.len() <= MAX_REPORTED_HOP1
            && r.hop2.len() + d.hop2_changes.len() <= MAX_REPORTED_HOP2
        {
            return false;
        }
        // Or even if every addition were new.
        let adds1 = d
            .hop1_changes
            .iter()
            .filter(|c| c.kind != Hop1ChangeKind::Removed)
            .count();
        let adds2 = d
            .hop2_changes
            .iter()
            .filter(|c| c.kind == Hop2ChangeKind::Added)
            .count();
        if r.hop1.len() + adds1 <= MAX_REPORTED_HOP1 && r.hop2.len() + adds2 <= MAX_REPORTED_HOP2 {
            return false;
        }
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
            let slot = report.slot;
            let hop1 = std::mem::take(&mut report.hop1);
            let hop2 = std::mem::take(&mut report.hop2);
            self.union.note_removed(hop2.len());
            for (x, rep) in hop1.iter() {
                if *x != self.me {
                    self.unref_hop2(x, rep.addr.is_some(), slot);
                }
            }
        }
    }

    fn rebuild_union(&mut self) {
        self.union.rebuild(self.reports.values().map(|r| &r.hop2));
    }

    /// Is `id` anywhere in the map (what `find(id).is_some()` says, without
    /// collecting the reporters)?
    pub fn contains(&self, id: &NodeId) -> bool {
        self.contains_by(id, |set, fp| set.contains(fp))
    }

    /// [`Map::contains`] for a simulator that asks many maps about one id
    /// (measurement): `known` remembers, by stored list, whether a peer's
    /// reported hop-2 set holds the id's fingerprint, so a list that
    /// meshes share ([`SharedReports`]: one list, one fingerprint
    /// key) is searched once, not once per holder. Same answer as
    /// `contains`, provided `known` serves one id only and no map changes
    /// while it lives (a list's identity is its allocation).
    pub fn contains_memo(&self, id: &NodeId, known: &mut HashMap<usize, bool>) -> bool {
        self.contains_by(id, |set, fp| {
            *known
                .entry(set.identity())
                .or_insert_with(|| set.contains(fp))
        })
    }

    /// [`Map::contains`], with `holds` saying whether a peer's reported
    /// hop-2 set holds a fingerprint.
    fn contains_by(&self, id: &NodeId, mut holds: impl FnMut(&FpSet, u32) -> bool) -> bool {
        if *id == self.me || self.hop1.contains_key(id) || self.hop2.contains_key(&Key(*id)) {
            return true;
        }
        let fp = self.fingerprint.fp(id);
        self.union.may_contain(fp) && self.reports.values().any(|r| holds(&r.hop2, fp))
    }

    /// Where `id` is, nearest hop first. O(1) for hop 1, hop 2 and a hop-3
    /// miss; a hop-3 hit is confirmed in each peer's sorted list.
    pub fn find(&self, id: &NodeId) -> Option<Found> {
        self.find_with(id, true)
    }

    /// [`Map::find`], except that a hop-3 answer names only the first of
    /// its reporters (the smallest id), found without collecting and
    /// sorting them all: what the worm's local check asks of the map
    /// (it asks that reporter).
    pub(crate) fn find_first(&self, id: &NodeId) -> Option<Found> {
        self.find_with(id, false)
    }

    fn find_with(&self, id: &NodeId, all_reporters: bool) -> Option<Found> {
        if *id == self.me {
            return Some(Found::Me);
        }
        if let Some(p) = self.hop1.get(id) {
            return Some(Found::Hop1(p.clone()));
        }
        if let Some(e) = self.hop2.get(&Key(*id)) {
            let peer = self.slot_ids.get(e.best as usize).copied().flatten();
            let held = peer.and_then(|p| Some((p, self.reports.get(&p)?.hop1.get(id)?)));
            if let Some((reporter, r)) = held {
                return Some(Found::Hop2 {
                    reporter,
                    addr: r.addr(),
                    is_anchor: e.is_anchor,
                });
            }
            // The named reporter is stale (`STALE`): the rule, by a scan.
            if let Some((reporter, addr)) = self.best_reporter(id, e.count) {
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
        // The reports in id order: the first that holds it is the answer
        // when one reporter is asked for (a hop-3 node is reported by many
        // peers, so the scan stops after a few), and the list comes out
        // sorted when all are.
        let mut holders = self
            .by_id
            .iter()
            .filter(|p| self.reports.get(p).is_some_and(|r| r.hop2.contains(fp)));
        let reporters: Vec<NodeId> = if all_reporters {
            holders.copied().collect()
        } else {
            holders.next().into_iter().copied().collect()
        };
        if reporters.is_empty() {
            return None;
        }
        Some(Found::Hop3 { reporters })
    }

    /// The reporter [`Map::find`] names for hop-2 node `id` (reported by
    /// `count` peers), with the address its report carries: of the
    /// reports that hold `id` one with an address first, then the smallest
    /// id. The reports are looked at in id order, so the first with an
    /// address ends the scan (with `a` of `n` peers carrying one, ~n/(a+1)
    /// looks instead of n), as does the `count`-th that holds it.
    fn best_reporter(&self, id: &NodeId, count: u16) -> Option<(NodeId, Option<SocketAddr>)> {
        let mut first: Option<NodeId> = None;
        let mut seen = 0u16;
        for peer in &self.by_id {
            let Some(r) = self.reports.get(peer).and_then(|rep| rep.hop1.get(id)) else {
                continue;
            };
            if r.addr.is_some() {
                return Some((*peer, r.addr()));
            }
            first = first.or(Some(*peer));
            seen += 1;
            if seen >= count {
                break;
            }
        }
        first.map(|p| (p, None))
    }

    /// How many hop-1 peers hold a slot of a class `pred` accepts (O(1)).
    pub(crate) fn hop1_count(&self, pred: impl Fn(SlotClass) -> bool) -> usize {
        CLASSES
            .iter()
            .filter(|c| pred(**c))
            .map(|&c| self.classes[c as usize])
            .sum()
    }

    /// The direct peers.
    pub fn hop1(&self) -> impl Iterator<Item = (&NodeId, &Hop1Peer)> {
        self.hop1.iter()
    }

    /// A direct peer.
    pub fn peer(&self, id: &NodeId) -> Option<&Hop1Peer> {
        self.hop1.get(id)
    }

    /// Hop-2 nodes of the view (not me, not hop 1) with their anchor flag,
    /// in id order.
    pub fn hop2_view(&self) -> impl Iterator<Item = (NodeId, bool)> + '_ {
        self.hop2_view_entries().map(|(id, e)| (id, e.is_anchor))
    }

    /// Hop-2 nodes of the view that a peer's report carries an address for
    /// (the nodes this one could dial from its map), with their anchor flag
    /// (set if any report says so), in id order.
    pub(crate) fn hop2_addressed(&self) -> impl Iterator<Item = (NodeId, bool)> + '_ {
        self.hop2_view_entries()
            .filter(|(_, e)| e.addressed > 0)
            .map(|(id, e)| (id, e.is_anchor))
    }

    /// The hop-2 index's entries of the view, in id order (hop 2 is walked
    /// beside the sorted hop-1 ids: no lookup per entry).
    fn hop2_view_entries(&self) -> impl Iterator<Item = (NodeId, &Hop2Index)> + '_ {
        // Compared as `Key`s (the first eight bytes as one integer first):
        // one compare per hop-2 entry, a `memcmp` call each as `NodeId`s.
        let mut skip: Vec<Key> = self.hop1.keys().map(|id| Key(*id)).collect();
        skip.push(Key(self.me));
        skip.sort_unstable();
        let mut k = 0;
        self.hop2
            .iter()
            .filter(move |(key, _)| loop {
                match skip.get(k).map(|s| s.cmp(key)) {
                    Some(Ordering::Less) => k += 1,
                    Some(Ordering::Equal) => return false,
                    _ => return true,
                }
            })
            .map(|(Key(id), e)| (*id, e))
    }

    /// Entries in hop 2 of the view (an upper bound: hop 2 also holds
    /// hop-1 peers that other peers report).
    pub(crate) fn hop2_len_bound(&self) -> usize {
        self.hop2.len()
    }

    /// Every (reporter, node, address, anchor) of the peers' reported hop 1.
    #[cfg(test)]
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
        self.hop2.get(&Key(*id)).is_some_and(|e| e.is_anchor)
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

    /// The worm's forward step (§13.5) on this map: what
    /// [`route::forward_choice`](super::route::forward_choice) picks from
    /// the direct hops (`Hop { via: p, known: p }` for each peer `p`), the
    /// reported ones (`Hop { via: r, known: x }` for each hop-2 node `x` in
    /// peer `r`'s reported hop 1) and `extra`, skipping hops whose `via` is
    /// in `excluded`, without a look at every report's every entry (~10⁴ at
    /// 10⁴ nodes): of the reported hops only the best can win, i.e. the
    /// XOR-closest hop-2 node that some non-excluded peer reports (a search
    /// of the sorted hop 2, [`xor_closest`]: an entry's reporter count
    /// against the excluded peers that report it), through the smallest
    /// such peer. Reports of this node itself and of its own peers are no
    /// reported hops (§13.5: (P, N) for hop-2 nodes N; a peer is a
    /// candidate only as its direct hop). Same choice as the scan
    /// ([`Map::forward_choice_by_scan`]), tie-breaks included.
    pub(crate) fn forward_choice(
        &self,
        target: &NodeId,
        extra: impl IntoIterator<Item = Hop>,
        excluded: &[NodeId],
    ) -> Option<Hop> {
        let is_excluded = |v: &NodeId| excluded.contains(v);
        let mut excluded_reports: Vec<(&NodeId, &ReportedHop1)> = Vec::new();
        for v in excluded {
            if let Some(r) = self.reports.get(v) {
                if !excluded_reports.iter().any(|(p, _)| *p == v) {
                    excluded_reports.push((v, &r.hop1));
                }
            }
        }
        // Some peer that is not excluded reports `x`: more reporters than
        // excluded peers that report it.
        let reported_by_some = |x: &NodeId, e: &Hop2Index| {
            let n = usize::from(e.count);
            n > excluded_reports.len()
                || n > excluded_reports
                    .iter()
                    .filter(|(_, r)| r.get(x).is_some())
                    .count()
        };
        // The smallest peer, not excluded, whose report holds `x`.
        let smallest_reporter = |x: &NodeId| {
            self.reports
                .iter()
                .filter(|(p, r)| !is_excluded(p) && r.hop1.get(x).is_some())
                .map(|(p, _)| *p)
                .min_by_key(|p| p.0)
        };
        // Only hop-2 nodes (§13.5): the index also counts reports of this
        // node and of its own peers, which are no reported hops (a peer is
        // a candidate only as its direct hop).
        let in_hop2 = |x: &NodeId, e: &Hop2Index| {
            *x != self.me && !self.hop1.contains_key(x) && reported_by_some(x, e)
        };
        let reported = xor_closest(&self.hop2, target, in_hop2)
            .and_then(|x| Some(Hop::reported(smallest_reporter(&x)?, x)));
        let direct = self.hop1.keys().map(|p| Hop::direct(*p));
        super::route::forward_choice(target, direct.chain(extra).chain(reported), is_excluded)
    }

    /// [`Map::forward_choice`] by the plain scan of every candidate (the
    /// rule as §13.5 states it; the tests compare the two).
    #[cfg(test)]
    pub(crate) fn forward_choice_by_scan(
        &self,
        target: &NodeId,
        extra: impl IntoIterator<Item = Hop>,
        excluded: &[NodeId],
    ) -> Option<Hop> {
        let direct = self.hop1.keys().map(|p| Hop::direct(*p));
        let reported = self
            .reported_hop1()
            .filter(|(_, known, _)| **known != self.me && !self.hop1.contains_key(*known))
            .map(|(via, known, _)| Hop::reported(*via, *known));
        super::route::forward_choice(target, direct.chain(reported).chain(extra), |v| {
            excluded.contains(v)
        })
    }

    /// The XOR-closest node to `target` this map holds an address for (a
    /// hop-1 peer with advertised addresses, a hop-2 node a report carried
    /// an address for), skipping `skip`: exact and current, in O(log n).
    pub(crate) fn closest_addressable(&self, target: &NodeId, skip: &NodeId) -> Option<NodeId> {
        let mut best = xor_closest(&self.hop2, target, |id, e| e.addressed > 0 && id != skip);
        for (id, p) in &self.hop1 {
            if p.addresses.is_empty() || id == skip {
                continue;
            }
            if best.is_none_or(|b| super::route::closer(&target.0, &id.0, &b.0)) {
                best = Some(*id);
            }
        }
        best
    }

    /// [`Map::find_first`] (its callers want a hop-2 answer; a hop-3 one
    /// names its first reporter only); a hop-2 entry whose named reporter
    /// was stale ([`STALE`]) is named again from the answer, which is the
    /// rule's best reporter (an address first, then the smallest id): the
    /// entry is then current until that reporter changes it, as a fresh
    /// entry is, so the next look is one search instead of a scan of every
    /// report. A stale mark otherwise stays until the entry goes, and each
    /// worm query's `closest` (`address_of`) paid that scan (~8 % of a
    /// 5×10³-node simulation after the join).
    pub(crate) fn find_and_rename(&mut self, id: &NodeId) -> Option<Found> {
        let found = self.find_first(id);
        if let Some(Found::Hop2 { reporter, addr, .. }) = &found {
            let slot = self.reports.get(reporter).map(|r| r.slot);
            if let (Some(slot), Some(e)) = (slot, self.hop2.get_mut(&Key(*id))) {
                if e.best == STALE {
                    (e.best, e.best_addr) = (slot, addr.is_some());
                }
            }
        }
        found
    }

    /// The addresses this map holds for `id`: its advertised ones if it is
    /// a peer, else the address a report carried.
    pub(crate) fn address_of(&mut self, id: &NodeId) -> Option<PeerAddress> {
        if let Some(pa) = self.peer_address(id).filter(|p| !p.addresses.is_empty()) {
            return Some(pa);
        }
        match self.find_and_rename(id) {
            Some(Found::Hop2 {
                addr: Some(a),
                is_anchor,
                ..
            }) => Some(PeerAddress {
                node_id: *id,
                addresses: vec![SocketAddress(a)],
                is_anchor,
                last_seen_ms: 0,
            }),
            _ => None,
        }
    }

    /// Sizes and memory.
    pub fn stats(&mut self) -> MapStats {
        if self.union.needs_rebuild() || self.union.count_stale() {
            self.rebuild_union();
        }
        let reports: usize = self
            .reports
            .values()
            .map(|r| r.hop1.bytes() + r.hop2.bytes() + std::mem::size_of::<PeerReport>() + 33)
            .sum();
        let hop2 = self.hop2.bytes();
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;

    fn id(seed: u64) -> NodeId {
        let mut b = [0u8; 32];
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for chunk in b.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        NodeId(b)
    }

    fn brute(cands: &[NodeId], target: &NodeId) -> Option<NodeId> {
        let mut best: Option<NodeId> = None;
        for c in cands {
            if best.is_none_or(|b| super::super::route::closer(&target.0, &c.0, &b.0)) {
                best = Some(*c);
            }
        }
        best
    }

    #[test]
    fn xor_closest_matches_a_scan() {
        for n in [0usize, 1, 2, 3, 17, 300, 2000] {
            let mut set: Blocks<bool> = Blocks::default();
            for i in 0..n {
                // Every third key is not eligible; some keys share long
                // prefixes with each other.
                let mut k = id(i as u64 + 1000 * n as u64);
                if i % 5 == 0 && i > 0 {
                    k = id(i as u64 - 1 + 1000 * n as u64);
                    k.0[31] ^= 1 << (i % 8);
                }
                *set.entry_or_insert(Key(k), || false).0 = i % 3 != 0;
            }
            let eligible: Vec<NodeId> = set.iter().filter(|(_, v)| **v).map(|(k, _)| k.0).collect();
            for t in 0..200u64 {
                let mut target = id(t + 77);
                if t % 4 == 0 {
                    if let Some(e) = eligible.get(t as usize % eligible.len().max(1)) {
                        target = *e; // exact hits
                        target.0[20] ^= (t % 2) as u8;
                    }
                }
                let got = xor_closest(&set, &target, |_, v| *v);
                assert_eq!(got, brute(&eligible, &target), "n {n} target {t}");
            }
        }
    }

    /// The reporter `find` names, by the rule (a scan of every report).
    fn reporter_by_scan(map: &Map, x: &NodeId) -> Option<(NodeId, Option<SocketAddr>)> {
        let mut best: Option<(bool, std::cmp::Reverse<NodeId>, Option<SocketAddr>)> = None;
        for (p, r) in &map.reports {
            if let Some(rep) = r.hop1.get(x) {
                let cand = (rep.addr.is_some(), std::cmp::Reverse(*p), rep.addr());
                if best.is_none_or(|b| (cand.0, cand.1) > (b.0, b.1)) {
                    best = Some(cand);
                }
            }
        }
        best.map(|(_, p, a)| (p.0, a))
    }

    /// The per-class counts follow every connect, class change and
    /// disconnect (what a scan of hop 1 counts).
    #[test]
    fn hop1_counts_by_class_equal_a_scan() {
        let mut map = Map::new(id(1), [4; 40]);
        let mut r = 7u64;
        for step in 0..2000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let p = id(10 + r % 24);
            if (r >> 20).is_multiple_of(4) {
                map.remove_hop1(&p);
            } else {
                let class = CLASSES[((r >> 30) % 4) as usize];
                let addresses = match (r >> 40) % 2 {
                    0 => vec![],
                    _ => vec!["192.0.2.1:1".parse().unwrap()],
                };
                let peer = Hop1Peer {
                    addresses,
                    is_anchor: false,
                    class,
                };
                map.set_hop1(p, peer);
            }
            for c in CLASSES {
                let scan = map.hop1().filter(|(_, x)| x.class == c).count();
                assert_eq!(map.hop1_count(|k| k == c), scan, "step {step}");
            }
            let wide = map.hop1().filter(|(_, x)| x.class.is_wide()).count();
            assert_eq!(map.hop1_count(SlotClass::is_wide), wide, "step {step}");
        }
    }

    #[test]
    fn the_named_reporter_follows_the_rule_through_every_change() {
        let me = id(1);
        let mut map = Map::new(me, [4; 40]);
        let peers: Vec<NodeId> = (10..16).map(id).collect();
        let xs: Vec<NodeId> = (100..112).map(id).collect();
        let addr = |i: u64| -> SocketAddr {
            format!("192.0.2.{}:{}", i % 200 + 1, i % 60000 + 1)
                .parse()
                .unwrap()
        };
        let up = |map: &mut Map, p: NodeId| {
            map.set_hop1(
                p,
                Hop1Peer {
                    addresses: vec![],
                    is_anchor: false,
                    class: SlotClass::Social,
                },
            )
        };
        for p in &peers {
            up(&mut map, *p);
        }
        let mut r = 12345u64;
        for step in 0..4000u64 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let p = peers[(r % peers.len() as u64) as usize];
            let x = xs[((r >> 8) % xs.len() as u64) as usize];
            match (r >> 20) % 16 {
                0..=6 => {
                    let a = (!(r >> 30).is_multiple_of(3)).then(|| addr(r >> 40));
                    map.report_hop1(&p, x, Reported::new(a, false));
                }
                7..=9 => map.unreport_hop1(&p, &x),
                10 | 11 => {
                    // A batch (one diff), ids repeated within it.
                    let ops: Vec<(NodeId, Option<Reported>)> = (0..(r >> 33) % 6)
                        .map(|k| {
                            let y = xs[((r >> (34 + 3 * k)) % xs.len() as u64) as usize];
                            let a = ((r >> (50 + k)) & 1 == 0).then(|| addr(k));
                            let op = ((r >> (40 + k)) & 3 != 0).then(|| Reported::new(a, false));
                            (y, op)
                        })
                        .collect();
                    map.apply_hop1(&p, &ops);
                }
                12 => map.clear_report(&p),
                13 => {
                    map.remove_hop1(&p);
                    up(&mut map, p);
                }
                _ => {}
            }
            for (i, x) in xs.iter().enumerate() {
                let want = reporter_by_scan(&map, x);
                // Some looks name a stale entry's reporter again: every
                // later change must keep it the rule's.
                let found = if (r >> 12).wrapping_add(i as u64).is_multiple_of(3) {
                    map.find_and_rename(x)
                } else {
                    map.find(x)
                };
                let got = match found {
                    Some(Found::Hop2 { reporter, addr, .. }) => Some((reporter, addr)),
                    _ => None,
                };
                assert_eq!(got, want, "step {step}");
            }
        }
    }

    #[test]
    fn a_leaving_peer_hands_its_named_nodes_to_the_next_best() {
        // Every peer reports the same 50 nodes, some with an address: the
        // peer that leaves (or whose report is cleared) is the named
        // reporter of many at once (the batched rescan).
        let me = id(1);
        let mut map = Map::new(me, [6; 40]);
        let peers: Vec<NodeId> = (10..18).map(id).collect();
        let xs: Vec<NodeId> = (200..250).map(id).collect();
        let addr = |i: u64| -> SocketAddr { format!("192.0.2.{}:4433", i + 1).parse().unwrap() };
        for p in &peers {
            map.set_hop1(
                *p,
                Hop1Peer {
                    addresses: vec![],
                    is_anchor: false,
                    class: SlotClass::Social,
                },
            );
        }
        for (k, p) in peers.iter().enumerate() {
            let ops: Vec<(NodeId, Option<Reported>)> = xs
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let a = ((i + k) % 3 != 0).then(|| addr(i as u64));
                    (*x, Some(Reported::new(a, false)))
                })
                .collect();
            map.apply_hop1(p, &ops);
        }
        let check = |map: &Map| {
            for x in &xs {
                let got = match map.find(x) {
                    Some(Found::Hop2 { reporter, addr, .. }) => Some((reporter, addr)),
                    _ => None,
                };
                assert_eq!(got, reporter_by_scan(map, x));
            }
        };
        check(&map);
        // Remove the named reporters first, so each removal orphans many.
        let mut order = peers.clone();
        order.sort();
        map.clear_report(&order[0]);
        check(&map);
        for p in &order {
            map.remove_hop1(p);
            check(&map);
        }
        assert!(xs.iter().all(|x| map.find(x).is_none()));
    }

    #[test]
    fn shared_reports_give_the_same_maps_and_store_each_list_once() {
        let shared = SharedReports::new([6; 40]);
        let peer = id(500);
        let mk = |me: NodeId, sh: Option<&SharedReports>| {
            let mut m = Map::new(me, [6; 40]);
            if let Some(s) = sh {
                m.share_reports(s.clone());
            }
            m.set_hop1(
                peer,
                Hop1Peer {
                    addresses: vec![],
                    is_anchor: false,
                    class: SlotClass::Wide,
                },
            );
            m
        };
        let mut maps = [
            mk(id(1), Some(&shared)),
            mk(id(2), Some(&shared)),
            mk(id(3), None),
        ];
        let xs: Vec<NodeId> = (100..140).map(id).collect();
        let addr: SocketAddr = "192.0.2.9:9".parse().unwrap();
        let mut r = 99u64;
        for step in 0..600 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let ops: Vec<(NodeId, Option<Reported>)> = (0..1 + (r % 5))
                .map(|k| {
                    let y = xs[((r >> (8 + 5 * k)) % xs.len() as u64) as usize];
                    let op = ((r >> (40 + k)) & 3 != 0)
                        .then(|| Reported::new(((r >> (50 + k)) & 1 == 0).then_some(addr), false));
                    (y, op)
                })
                .collect();
            let add: Vec<NodeId> = (0..(r >> 45) % 4)
                .map(|k| id(1000 + ((r >> k) % 300)))
                .collect();
            let rem: Vec<NodeId> = (0..(r >> 47) % 3)
                .map(|k| id(1000 + ((r >> (k + 9)) % 300)))
                .collect();
            for m in &mut maps {
                m.apply_hop1(&peer, &ops);
                m.report_hop2(&peer, add.iter(), rem.iter());
            }
            for x in xs.iter().chain(&add).chain(&rem) {
                let want = maps[2].find(x);
                assert_eq!(maps[0].find(x), want, "step {step}");
                assert_eq!(maps[1].find(x), want, "step {step}");
                // One memo for the three maps: the shared list is searched
                // once (two lists in all), with `contains`'s answers.
                let mut memo = HashMap::new();
                for m in &maps {
                    assert_eq!(m.contains_memo(x, &mut memo), m.contains(x), "step {step}");
                }
                assert!(memo.len() <= 2, "step {step}");
            }
            let (a, b) = (&maps[0].reports[&peer], &maps[1].reports[&peer]);
            assert!(
                Arc::ptr_eq(&a.hop1.entries.spine, &b.hop1.entries.spine),
                "step {step}"
            );
            assert_eq!(
                a.hop1.entries.to_vec(),
                maps[2].reports[&peer].hop1.entries.to_vec()
            );
            assert_eq!(a.hop2.len(), maps[2].reports[&peer].hop2.len());
            assert!(a.hop2.iter().eq(b.hop2.iter()));
        }
    }

    /// The closest addressable node by the rule: a scan of hop 1 and of
    /// every report's every entry.
    fn closest_addressable_by_scan(map: &Map, target: &NodeId, skip: &NodeId) -> Option<NodeId> {
        let direct = map
            .hop1()
            .filter(|(_, p)| !p.addresses.is_empty())
            .map(|(id, _)| *id);
        let reported = map
            .reported_hop1()
            .filter(|(_, x, rep)| rep.addr.is_some() && **x != map.me)
            .map(|(_, x, _)| *x);
        let all: Vec<NodeId> = direct.chain(reported).filter(|x| x != skip).collect();
        brute(&all, target)
    }

    /// `find_first` is `find` with a hop-3 answer cut to its first
    /// reporter, on maps whose peers report overlapping hop-1 and hop-2
    /// sets (additions and removals), for reported ids and others (most of
    /// which the filter lets through on a small map only to be refuted).
    #[test]
    fn find_first_is_find_with_the_first_reporter() {
        let me = id(7);
        let mut map = Map::new(me, [3; 40]);
        let peers: Vec<NodeId> = (20..40).map(id).collect();
        let pool: Vec<NodeId> = (1000..1400).map(id).collect();
        for p in &peers {
            map.set_hop1(
                *p,
                Hop1Peer {
                    addresses: vec![],
                    is_anchor: false,
                    class: SlotClass::Social,
                },
            );
        }
        let mut r = 77u64;
        let mut next = move || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let mut hits = [0usize; 4];
        for round in 0..30 {
            for p in &peers {
                let pick = |w: u64| pool[(w % pool.len() as u64) as usize];
                let add: Vec<NodeId> = (0..next() % 40).map(|_| pick(next())).collect();
                let rem: Vec<NodeId> = (0..next() % 20).map(|_| pick(next())).collect();
                map.report_hop2(p, add.iter(), rem.iter());
                if next() % 4 == 0 {
                    let x = pick(next());
                    let op = (next() % 3 != 0).then(|| Reported::new(None, false));
                    map.apply_hop1(p, &[(x, op)]);
                }
            }
            let others = (0..200).map(|i| id(5_000 + 1000 * round + i));
            for x in pool
                .iter()
                .copied()
                .chain(others)
                .chain(peers.clone())
                .chain([me])
            {
                let want = match map.find(&x) {
                    Some(Found::Hop3 { reporters }) => Some(Found::Hop3 {
                        reporters: reporters.into_iter().take(1).collect(),
                    }),
                    other => other,
                };
                let got = map.find_first(&x);
                if let Some(f) = &got {
                    hits[f.hops() as usize] += 1;
                }
                assert_eq!(got, want, "round {round}");
            }
        }
        assert!(hits.iter().all(|h| *h > 0), "{hits:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 48,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The worm's forward step and the closest addressable node, found
        /// by search in hop 2, are what the plain scans of every candidate
        /// give, on random maps: few ids with long shared prefixes (so
        /// XOR ties between a peer and a reported node, and nodes reported
        /// by several peers, are common), this node in the peers' reports,
        /// excluded peers (visited, the sender) that report the closest
        /// nodes, the fan-out's answers, reports changed and peers removed
        /// between the checks.
        #[test]
        fn fast_forward_and_closest_equal_the_scans(
            seed in proptest::prelude::any::<u64>(),
            peers in 1usize..24,
            pool in 2usize..80,
            steps in 1usize..400,
        ) {
            let mut r = seed | 1;
            let mut next = move || {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                r
            };
            // Ids that share long prefixes: a few bases, each varied in a
            // few low bits of one of its first bytes.
            let bases: Vec<NodeId> = (0..4).map(|i| id(seed ^ (i + 1))).collect();
            let mut ids: Vec<NodeId> = (0..pool + peers + 1)
                .map(|_| {
                    let mut x = bases[(next() % 4) as usize];
                    let byte = (next() % 3) as usize;
                    x.0[byte] ^= (next() % 16) as u8;
                    x.0[31] ^= (next() % 4) as u8;
                    x
                })
                .collect();
            ids.sort();
            ids.dedup();
            proptest::prop_assume!(ids.len() > peers + 1);
            let me = ids[(next() % ids.len() as u64) as usize];
            ids.retain(|x| *x != me);
            let peer_ids: Vec<NodeId> = ids[..peers].to_vec();
            let addr = |i: u64| -> SocketAddr {
                format!("192.0.2.{}:{}", i % 200 + 1, i % 60000 + 1)
                    .parse()
                    .unwrap()
            };
            let mut map = Map::new(me, [9; 40]);
            let connect = |map: &mut Map, p: NodeId, with_addr: bool, i: u64| {
                map.set_hop1(
                    p,
                    Hop1Peer {
                        addresses: if with_addr { vec![addr(i)] } else { vec![] },
                        is_anchor: false,
                        class: SlotClass::Social,
                    },
                )
            };
            for (i, p) in peer_ids.iter().enumerate() {
                connect(&mut map, *p, i % 3 != 0, i as u64);
            }
            // Anything may be reported, me and the peers included.
            let mut everyone = ids.clone();
            everyone.push(me);
            for step in 0..steps {
                let v = next();
                let p = peer_ids[(v % peers as u64) as usize];
                match (v >> 8) % 10 {
                    0..=5 => {
                        let ops: Vec<(NodeId, Option<Reported>)> = (0..1 + (v >> 12) % 6)
                            .map(|k| {
                                let w = next();
                                let x = everyone[(w % everyone.len() as u64) as usize];
                                let op = (w >> 20) % 5 != 0;
                                let a = (w >> 24) % 3 != 0;
                                (x, op.then(|| Reported::new(a.then(|| addr(k + w % 7)), false)))
                            })
                            .collect();
                        map.apply_hop1(&p, &ops);
                    }
                    6 => map.clear_report(&p),
                    7 => {
                        map.remove_hop1(&p);
                        connect(&mut map, p, (v >> 16) % 2 == 0, v % 50);
                    }
                    _ => {}
                }
                if step % 4 != 0 && step + 1 != steps {
                    continue;
                }
                for _ in 0..8 {
                    let w = next();
                    // Targets near known ids (and exactly them), or anywhere.
                    let mut target = if w % 4 == 0 {
                        id(w)
                    } else {
                        everyone[((w >> 8) % everyone.len() as u64) as usize]
                    };
                    if (w >> 40) % 2 == 0 {
                        target.0[31] ^= ((w >> 44) % 8) as u8;
                    }
                    // Visited relays (some of them peers), the sender, me.
                    let mut excluded: Vec<NodeId> = (0..(w >> 16) % 4)
                        .map(|k| everyone[((w >> (20 + 5 * k)) % everyone.len() as u64) as usize])
                        .collect();
                    excluded.push(me);
                    if (w >> 50) % 2 == 0 {
                        let from = peer_ids[((w >> 52) % peers as u64) as usize];
                        excluded.push(from);
                        excluded.push(from); // in `visited` too
                    }
                    let extra: Vec<Hop> = (0..(w >> 56) % 3)
                        .map(|_| {
                            let a = next();
                            Hop::reported(
                                peer_ids[(a % peers as u64) as usize],
                                everyone[((a >> 8) % everyone.len() as u64) as usize],
                            )
                        })
                        .collect();
                    proptest::prop_assert_eq!(
                        map.forward_choice(&target, extra.iter().copied(), &excluded),
                        map.forward_choice_by_scan(&target, extra.iter().copied(), &excluded),
                        "step {}", step
                    );
                    let skip = everyone[((w >> 3) % everyone.len() as u64) as usize];
                    proptest::prop_assert_eq!(
                        map.closest_addressable(&target, &skip),
                        closest_addressable_by_scan(&map, &target, &skip),
                        "step {}", step
                    );
                }
                // The wide candidates from the map: each addressed hop-2
                // node of the view once, flagged an anchor if a report says so.
                let want: Vec<(NodeId, bool)> = map
                    .reported_hop1()
                    .filter(|(_, x, _)| **x != map.me && map.peer(x).is_none())
                    .map(|(_, x, rep)| (*x, rep.addr.is_some(), rep.is_anchor))
                    .fold(BTreeMap::new(), |mut m, (x, addr, anchor)| {
                        let e: &mut (bool, bool) = m.entry(x).or_default();
                        *e = (e.0 || addr, e.1 || anchor);
                        m
                    })
                    .into_iter()
                    .filter(|(_, (addr, _))| *addr)
                    .map(|(x, (_, anchor))| (x, anchor))
                    .collect();
                let got: Vec<(NodeId, bool)> = map.hop2_addressed().collect();
                proptest::prop_assert_eq!(
                    got.iter().map(|g| g.0).collect::<Vec<_>>(),
                    want.iter().map(|w| w.0).collect::<Vec<_>>(),
                    "step {}", step
                );
                for (g, w) in got.iter().zip(&want) {
                    proptest::prop_assert!(g.1 || !w.1, "step {}: anchor flag lost", step);
                }
            }
        }
    }

    #[test]
    fn closest_is_current_and_skips_and_needs_an_address() {
        let me = id(1);
        let mut map = Map::new(me, [3; 40]);
        let peer = id(2);
        map.set_hop1(
            peer,
            Hop1Peer {
                addresses: vec!["192.0.2.1:1".parse().unwrap()],
                is_anchor: false,
                class: SlotClass::Social,
            },
        );
        let addr: SocketAddr = "192.0.2.2:2".parse().unwrap();
        let target = id(99);
        let mut near = target;
        near.0[31] ^= 1;
        assert_eq!(map.closest_addressable(&target, &me), Some(peer));
        // A report arrives: it is the answer at once (no index to refresh).
        assert!(map.report_hop1(&peer, near, Reported::new(Some(addr), false)));
        assert_eq!(map.closest_addressable(&target, &me), Some(near));
        // Skipped (the worm's originator): the next best.
        assert_eq!(map.closest_addressable(&target, &near), Some(peer));
        // Its address withdrawn (address changed to none): not a candidate.
        assert!(map.report_hop1(&peer, near, Reported::new(None, false)));
        assert_eq!(map.closest_addressable(&target, &me), Some(peer));
        assert!(map.report_hop1(&peer, near, Reported::new(Some(addr), false)));
        assert_eq!(map.closest_addressable(&target, &me), Some(near));
        map.unreport_hop1(&peer, &near);
        assert_eq!(map.closest_addressable(&target, &me), Some(peer));
        assert!(map.contains(&peer) && !map.contains(&near));
    }
}
