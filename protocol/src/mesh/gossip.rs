//! RoutingDiff, InitialMapSync and MapSyncRequest (`schema/README.md`
//! §13.2–§13.4): what this node sends about its view, and how what its
//! peers send becomes its hops 2 and 3.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use super::map::{Layer, Reported, MAX_REPORTED_HOP1, MAX_REPORTED_HOP2};
use super::{Counters, Mesh, MeshMessage, OutEvent, Refusal, Timer};
use crate::ids::NodeId;
use crate::limits::PROTOCOL_VERSION;
use crate::messages::common::{PeerAddress, SocketAddress};
use crate::messages::discovery::{
    Hop1Change, Hop1ChangeKind, Hop1Entry, Hop2Change, Hop2ChangeKind, Hop2Entry, InitialMapSync,
    MapSyncRequest, RoutingDiff,
};

/// Most hop-1 changes this node puts in one RoutingDiff.
pub const DIFF_HOP1_CHUNK: usize = 1024;
/// Most hop-2 changes this node puts in one RoutingDiff.
pub const DIFF_HOP2_CHUNK: usize = 4096;
/// Most hop-2 entries this node puts in one InitialMapSync chunk.
pub const SYNC_HOP2_CHUNK: usize = 4096;
/// Most chunks of one InitialMapSync a receiver accepts.
pub const MAX_SYNC_CHUNKS: u32 = 16;
/// Out-of-order diffs a receiver holds while waiting for a missing seq;
/// one more is a gap.
pub const MAX_HELD_DIFFS: usize = 16;
/// How long the first held diff waits for the missing ones before the
/// receiver calls it a gap.
pub const HOLD_FOR: Duration = Duration::from_secs(10);
/// A peer's MapSyncRequests are served at most once per this period, and a
/// node sends each peer at most one per this period.
pub const SYNC_REQUEST_INTERVAL: Duration = Duration::from_secs(60);
/// An incomplete map staging is dropped this long after its latest chunk.
pub const STAGING_TIMEOUT: Duration = Duration::from_secs(60);

/// Gossip state with one peer, both directions: what every diff tick and
/// received diff touches inline, the rest boxed (a heap profile of a
/// simulated join had the per-peer table at 7 % of the heap, ~265 bytes a
/// peer with the table's slack).
#[derive(Debug, Default)]
pub(crate) struct PeerSync {
    /// Last seq sent to the peer (its InitialMapSync carried the base).
    out_seq: u64,
    /// Journal position the peer is up to date with.
    journal_pos: u64,
    /// Last seq applied from the peer; `None` until a full map arrived.
    in_seq: Option<u64>,
    /// The rest, while any of it matters ([`PeerSync::settle`]).
    cold: Option<Box<Cold>>,
}

/// The parts of [`PeerSync`] that matter only around a map sync, a gap or
/// out-of-order diffs.
#[derive(Debug, Default)]
struct Cold {
    /// When its last MapSyncRequest was served.
    served_request: Option<Duration>,
    /// A map sync being received.
    staging: Option<Staging>,
    held: BTreeMap<u64, RoutingDiff>,
    held_since: Option<Duration>,
    /// When this node last sent the peer a MapSyncRequest.
    requested_at: Option<Duration>,
}

impl PeerSync {
    fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_default()
    }

    fn staging(&self) -> Option<&Staging> {
        self.cold.as_ref().and_then(|c| c.staging.as_ref())
    }

    fn served_request(&self) -> Option<Duration> {
        self.cold.as_ref().and_then(|c| c.served_request)
    }

    /// Drop the boxed part once nothing in it matters any more at `now` or
    /// later (a served request older than [`SYNC_REQUEST_INTERVAL`] acts as
    /// none).
    fn settle(&mut self, now: Duration) {
        let idle = self.cold.as_ref().is_some_and(|c| {
            c.staging.is_none()
                && c.held.is_empty()
                && c.held_since.is_none()
                && c.requested_at.is_none()
                && c.served_request
                    .is_none_or(|t| now >= t + SYNC_REQUEST_INTERVAL)
        });
        if idle {
            self.cold = None;
        }
    }
}

#[derive(Debug)]
struct Staging {
    seq: u64,
    chunk_count: u32,
    received: BTreeSet<u32>,
    hop1: Vec<Hop1Entry>,
    hop2: Vec<Hop2Entry>,
    last_chunk: Duration,
}

fn first_addr(a: &[SocketAddress]) -> Option<std::net::SocketAddr> {
    a.first().map(|s| s.0)
}

impl Mesh {
    /// The stateless checks of §13.4/§13.9 a push must pass beyond decoding.
    pub fn check_message(msg: &MeshMessage) -> Result<(), Refusal> {
        if let MeshMessage::InitialMapSync(s) = msg {
            if s.chunk_count == 0 || s.chunk_index >= s.chunk_count {
                return Err(Refusal::Malformed(
                    "chunkIndex must be below chunkCount, chunkCount at least 1",
                ));
            }
            if s.chunk_count > MAX_SYNC_CHUNKS {
                return Err(Refusal::TooLarge("chunkCount above 16"));
            }
            if s.chunk_index != 0 && !s.hop1.is_empty() {
                return Err(Refusal::Malformed("hop1 outside chunk 0"));
            }
        }
        Ok(())
    }

    /// Every check of §13.9 for a mesh push from `peer` at `now`, without
    /// changing anything: what the runtime answers when the push came on a
    /// bidirectional stream (`Ok` → `Ack`). Hand the push to
    /// [`Mesh::handle`] either way; it applies the same rules (a refused
    /// map or diff is a gap, §13.3).
    pub fn check_push(
        &self,
        now: Duration,
        peer: &NodeId,
        msg: &MeshMessage,
    ) -> Result<(), Refusal> {
        Mesh::check_message(msg)?;
        let st = self.sync.get(peer);
        match msg {
            MeshMessage::InitialMapSync(s) => {
                let staged = st.and_then(PeerSync::staging).filter(|g| g.seq == s.seq);
                if staged.is_some_and(|g| g.chunk_count != s.chunk_count) {
                    return Err(Refusal::Malformed("chunkCount differs within one map"));
                }
                let (h1, h2) = staged.map_or((0, 0), |g| (g.hop1.len(), g.hop2.len()));
                if h1 + s.hop1.len() > MAX_REPORTED_HOP1 || h2 + s.hop2.len() > MAX_REPORTED_HOP2 {
                    return Err(Refusal::TooLarge(
                        "more than 1,024 hop-1 or 65,536 hop-2 entries in one map",
                    ));
                }
                Ok(())
            }
            MeshMessage::RoutingDiff(d) => {
                if self.map.diff_overflows(peer, d) {
                    return Err(Refusal::TooLarge(
                        "the diff takes the report over 1,024 hop-1 or 65,536 hop-2 entries",
                    ));
                }
                Ok(())
            }
            MeshMessage::MapSyncRequest(_) => match st.and_then(PeerSync::served_request) {
                Some(t) if now < t + SYNC_REQUEST_INTERVAL => {
                    Err(Refusal::RateLimited(t + SYNC_REQUEST_INTERVAL - now))
                }
                _ => Ok(()),
            },
        }
    }

    /// A new connection: send the whole view (hop 1 and hop 2) as an
    /// InitialMapSync at the peer's current seq.
    pub(crate) fn start_sync_to(&mut self, peer: NodeId) {
        let end = self.map.journal_end();
        let st = self.sync.entry(peer).or_default();
        st.journal_pos = end;
        let seq = st.out_seq;
        let hop1: Vec<Hop1Entry> = self
            .map
            .hop1()
            .map(|(id, p)| Hop1Entry {
                peer: PeerAddress {
                    node_id: *id,
                    addresses: p.addresses.iter().map(|a| SocketAddress(*a)).collect(),
                    is_anchor: p.is_anchor,
                    last_seen_ms: 0,
                },
                is_wide: p.class.is_wide(),
            })
            .collect();
        // Already in id order (hop 2 is kept sorted), written straight into
        // chunks of SYNC_HOP2_CHUNK (at least one, maybe empty).
        let mut room = self
            .map
            .hop2_len_bound()
            .min(SYNC_HOP2_CHUNK * MAX_SYNC_CHUNKS as usize);
        let mut chunks: Vec<Vec<Hop2Entry>> = Vec::new();
        let mut cur: Vec<Hop2Entry> = Vec::with_capacity(room.min(SYNC_HOP2_CHUNK));
        for (node_id, is_anchor) in self
            .map
            .hop2_view()
            .take(SYNC_HOP2_CHUNK * MAX_SYNC_CHUNKS as usize)
        {
            if cur.len() == SYNC_HOP2_CHUNK {
                room = room.saturating_sub(SYNC_HOP2_CHUNK);
                let next = Vec::with_capacity(room.clamp(1, SYNC_HOP2_CHUNK));
                chunks.push(std::mem::replace(&mut cur, next));
            }
            cur.push(Hop2Entry { node_id, is_anchor });
        }
        chunks.push(cur);
        let count = chunks.len() as u32;
        let mut hop1 = Some(hop1);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let h1 = if i == 0 {
                hop1.take().unwrap_or_default()
            } else {
                Vec::new()
            };
            self.stats.syncs_sent += 1;
            self.stats.sync_entries_sent += (h1.len() + chunk.len()) as u64;
            self.out.push_back(OutEvent::Push {
                peer,
                msg: MeshMessage::InitialMapSync(InitialMapSync {
                    version: PROTOCOL_VERSION,
                    seq,
                    hop1: h1,
                    hop2: chunk,
                    hop3: Vec::new(),
                    chunk_index: i as u32,
                    chunk_count: count,
                }),
            });
        }
    }

    pub(crate) fn on_message(&mut self, now: Duration, peer: NodeId, msg: MeshMessage) {
        if !self.map.has_report(&peer) {
            return;
        }
        match msg {
            MeshMessage::RoutingDiff(d) => self.on_diff(now, peer, d),
            msg @ MeshMessage::InitialMapSync(_) => {
                // Checked in place (a chunk holds up to 4,096 entries).
                let ok = self.check_push(now, &peer, &msg).is_ok();
                let MeshMessage::InitialMapSync(s) = msg else {
                    return;
                };
                if !ok {
                    if let Some(c) = self.sync.get_mut(&peer).and_then(|st| st.cold.as_mut()) {
                        c.staging = None;
                    }
                    self.gap(now, peer);
                } else {
                    self.on_sync_chunk(now, peer, s);
                }
            }
            MeshMessage::MapSyncRequest(_) => {
                let st = self.sync.entry(peer).or_default();
                let due = st
                    .served_request()
                    .is_none_or(|t| now >= t + SYNC_REQUEST_INTERVAL);
                if due {
                    st.cold().served_request = Some(now);
                    self.start_sync_to(peer);
                }
            }
        }
        if let Some(st) = self.sync.get_mut(&peer) {
            st.settle(now);
        }
    }

    fn on_diff(&mut self, now: Duration, peer: NodeId, d: RoutingDiff) {
        let st = self.sync.entry(peer).or_default();
        match st.in_seq {
            Some(last) if d.seq <= last => {}
            Some(last) if d.seq == last + 1 => {
                if self.map.diff_overflows(&peer, &d) {
                    self.gap(now, peer);
                    return;
                }
                st.in_seq = Some(d.seq);
                self.apply_diff(&peer, &d);
                self.drain_held(now, peer);
            }
            _ => {
                let c = st.cold();
                c.held.insert(d.seq, d);
                if c.held_since.is_none() {
                    c.held_since = Some(now);
                    self.timers.insert((now + HOLD_FOR, Timer::Gaps));
                }
                if c.held.len() > MAX_HELD_DIFFS {
                    self.gap(now, peer);
                }
            }
        }
    }

    fn drain_held(&mut self, now: Duration, peer: NodeId) {
        loop {
            let Some(st) = self.sync.get_mut(&peer) else {
                return;
            };
            let Some(last) = st.in_seq else { return };
            let Some(c) = st.cold.as_mut() else { return };
            // Drop what is already applied; apply the next one if present.
            while c.held.first_key_value().is_some_and(|(s, _)| *s <= last) {
                c.held.pop_first();
            }
            let Some(d) = c.held.remove(&(last + 1)) else {
                if c.held.is_empty() {
                    c.held_since = None;
                }
                return;
            };
            if self.map.diff_overflows(&peer, &d) {
                self.gap(now, peer);
                return;
            }
            st.in_seq = Some(d.seq);
            self.apply_diff(&peer, &d);
        }
    }

    /// A gap (§13.3): drop the peer's report and ask it for a fresh map, at
    /// most once per [`SYNC_REQUEST_INTERVAL`].
    fn gap(&mut self, now: Duration, peer: NodeId) {
        let Some(st) = self.sync.get_mut(&peer) else {
            return;
        };
        let last = st.in_seq.unwrap_or(0);
        st.in_seq = None;
        let c = st.cold();
        c.held.clear();
        c.held_since = None;
        self.stats.gaps += 1;
        self.map.clear_report(&peer);
        if c.requested_at
            .is_some_and(|t| now < t + SYNC_REQUEST_INTERVAL)
        {
            return;
        }
        c.requested_at = Some(now);
        self.timers
            .insert((now + SYNC_REQUEST_INTERVAL, Timer::Gaps));
        self.out.push_back(OutEvent::Push {
            peer,
            msg: MeshMessage::MapSyncRequest(MapSyncRequest {
                version: PROTOCOL_VERSION,
                last_seq: last,
            }),
        });
    }

    /// The gap timer: held diffs that waited [`HOLD_FOR`], stagings idle for
    /// [`STAGING_TIMEOUT`], and MapSyncRequests unanswered for a minute.
    pub(crate) fn check_gaps(&mut self, now: Duration) {
        let mut due = Vec::new();
        for (peer, st) in &mut self.sync {
            let in_seq = st.in_seq;
            let Some(c) = st.cold.as_mut() else { continue };
            let held = c.held_since.is_some_and(|t| now >= t + HOLD_FOR);
            let stalled = c
                .staging
                .as_ref()
                .is_some_and(|g| now >= g.last_chunk + STAGING_TIMEOUT);
            if stalled {
                c.staging = None;
            }
            let unanswered = in_seq.is_none()
                && c.staging.is_none()
                && c.requested_at
                    .is_some_and(|t| now >= t + SYNC_REQUEST_INTERVAL);
            if held || stalled || unanswered {
                due.push(*peer);
            } else {
                st.settle(now);
            }
        }
        for peer in due {
            self.gap(now, peer);
            if let Some(st) = self.sync.get_mut(&peer) {
                st.settle(now);
            }
        }
    }

    fn apply_diff(&mut self, peer: &NodeId, d: &RoutingDiff) {
        if !d.hop1_changes.is_empty() {
            let ops: Vec<(NodeId, Option<Reported>)> = d
                .hop1_changes
                .iter()
                .map(|c| {
                    let rep = match c.kind {
                        Hop1ChangeKind::Removed => None,
                        _ => Some(Reported::new(first_addr(&c.addresses), c.is_anchor)),
                    };
                    (c.node_id, rep)
                })
                .collect();
            self.map.apply_hop1(peer, &ops);
        }
        if !d.hop2_changes.is_empty() {
            let removed = |c: &&Hop2Change| c.kind == Hop2ChangeKind::Removed;
            let changes = d.hop2_changes.iter();
            self.map.report_hop2(
                peer,
                changes.clone().filter(|c| !removed(c)).map(|c| &c.node_id),
                changes.filter(removed).map(|c| &c.node_id),
            );
        }
    }

    fn on_sync_chunk(&mut self, now: Duration, peer: NodeId, s: InitialMapSync) {
        let st = self.sync.entry(peer).or_default();
        if st.in_seq.is_some_and(|a| s.seq < a) {
            return; // an older map than the one applied
        }
        match st.staging().map(|g| g.seq) {
            Some(seq) if s.seq < seq => return,
            Some(seq) if s.seq == seq => {}
            _ => {
                st.cold().staging = Some(Staging {
                    seq: s.seq,
                    chunk_count: s.chunk_count,
                    received: BTreeSet::new(),
                    hop1: Vec::new(),
                    hop2: Vec::new(),
                    last_chunk: now,
                });
            }
        }
        let Some(g) = st.cold.as_mut().and_then(|c| c.staging.as_mut()) else {
            return;
        };
        if !g.received.insert(s.chunk_index) {
            return;
        }
        g.last_chunk = now;
        self.timers.insert((now + STAGING_TIMEOUT, Timer::Gaps));
        // The first chunk's lists are taken as they are (no copy).
        if g.hop1.is_empty() {
            g.hop1 = s.hop1;
        } else {
            g.hop1.extend(s.hop1);
        }
        if g.hop2.is_empty() {
            g.hop2 = s.hop2;
        } else {
            g.hop2.extend(s.hop2);
        }
        if g.received.len() as u32 != g.chunk_count {
            return;
        }
        let Some(c) = st.cold.as_mut() else { return };
        let Some(g) = c.staging.take() else { return };
        c.requested_at = None;
        st.in_seq = Some(g.seq);
        self.map.clear_report(&peer);
        let ops: Vec<(NodeId, Option<Reported>)> = g
            .hop1
            .iter()
            .map(|e| {
                let rep = Reported::new(first_addr(&e.peer.addresses), e.peer.is_anchor);
                (e.peer.node_id, Some(rep))
            })
            .collect();
        self.map.apply_hop1(&peer, &ops);
        self.map
            .report_hop2(&peer, g.hop2.iter().map(|e| &e.node_id), std::iter::empty());
        self.drain_held(now, peer);
    }

    /// The diff tick: every peer gets the net changes of the view since it
    /// was last brought up to date (nothing if there are none).
    pub(crate) fn send_diffs(&mut self) {
        let end = self.map.journal_end();
        let peers: Vec<(NodeId, u64)> = self
            .sync
            .iter()
            .map(|(peer, st)| (*peer, st.journal_pos))
            .collect();
        let Some(min_pos) = peers.iter().map(|(_, pos)| *pos).min() else {
            self.map.truncate_journal(end);
            return;
        };
        let journal = self.journal_index(min_pos);
        // The changes since each position, and how many peers still get
        // them: the last one gets the lists themselves when they fit in one
        // diff (in a join most peers, synced at different moments, are the
        // only ones at their position: each hop-1 change's addresses were
        // copied once more for nothing).
        type Changes = (Vec<Hop1Change>, Vec<Hop2Change>);
        let mut by_pos: HashMap<u64, (Option<Changes>, usize)> = HashMap::new();
        for (_, pos) in &peers {
            by_pos.entry(*pos).or_default().1 += 1;
        }
        for (peer, pos) in peers {
            let Some((changes, left)) = by_pos.get_mut(&pos) else {
                continue;
            };
            *left -= 1;
            let (h1, h2) = changes.get_or_insert_with(|| journal.changes_since(pos));
            let Some(st) = self.sync.get_mut(&peer) else {
                continue;
            };
            st.journal_pos = end;
            if *left == 0 && h1.len() <= DIFF_HOP1_CHUNK && h2.len() <= DIFF_HOP2_CHUNK {
                if h1.is_empty() && h2.is_empty() {
                    continue;
                }
                let (h1, h2) = (std::mem::take(h1), std::mem::take(h2));
                push_diff(&mut self.stats, &mut self.out, st, peer, h1, h2);
                continue;
            }
            let mut h1 = h1.as_slice();
            let mut h2 = h2.as_slice();
            while !h1.is_empty() || !h2.is_empty() {
                let (a, rest1) = h1.split_at(h1.len().min(DIFF_HOP1_CHUNK));
                let (b, rest2) = h2.split_at(h2.len().min(DIFF_HOP2_CHUNK));
                h1 = rest1;
                h2 = rest2;
                push_diff(
                    &mut self.stats,
                    &mut self.out,
                    st,
                    peer,
                    a.to_vec(),
                    b.to_vec(),
                );
            }
        }
        self.map.truncate_journal(end);
    }

    /// The journal from `from` on, indexed once so that the net changes
    /// since any later position cost one pass over that suffix (no hash
    /// lookup per event and position): for each event, where the previous
    /// event of the same (layer, id) is, and the change it would stand for
    /// if it were the first of its key in a suffix.
    pub(super) fn journal_index(&self, from: u64) -> JournalIndex {
        let start = from.saturating_sub(self.map.journal_base) as usize;
        let events = self.map.journal.get(start..).unwrap_or(&[]);
        let mut last: HashMap<(Layer, NodeId), u32, _> =
            HashMap::with_capacity_and_hasher(events.len(), self.map.hasher());
        let mut entries = Vec::with_capacity(events.len());
        for (i, ev) in events.iter().enumerate() {
            let key = (ev.layer, ev.id);
            let (prev, now) = match last.entry(key) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let prev = *e.get();
                    e.insert(i as u32);
                    let now = entries
                        .get(prev as usize)
                        .is_some_and(|p: &IndexedEvent| p.now);
                    (prev, now)
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i as u32);
                    (u32::MAX, self.map.view_has(ev.layer, &ev.id))
                }
            };
            let change = match ev.layer {
                Layer::Hop1 => {
                    let kind = match (ev.present_before, now) {
                        (false, true) => Some(Hop1ChangeKind::Added),
                        (true, true) => Some(Hop1ChangeKind::AddressChanged),
                        (true, false) => Some(Hop1ChangeKind::Removed),
                        (false, false) => None,
                    };
                    kind.map(|kind| {
                        let p = self.map.peer(&ev.id);
                        Change::Hop1(Hop1Change {
                            node_id: ev.id,
                            kind,
                            addresses: p
                                .map(|p| p.addresses.iter().map(|a| SocketAddress(*a)).collect())
                                .unwrap_or_default(),
                            is_anchor: p.is_some_and(|p| p.is_anchor),
                            is_wide: p.is_some_and(|p| p.class.is_wide()),
                        })
                    })
                }
                Layer::Hop2 => {
                    let kind = match (ev.present_before, now) {
                        (false, true) => Some(Hop2ChangeKind::Added),
                        (true, false) => Some(Hop2ChangeKind::Removed),
                        _ => None,
                    };
                    kind.map(|kind| {
                        Change::Hop2(Hop2Change {
                            node_id: ev.id,
                            kind,
                            is_anchor: self.map.hop2_is_anchor(&ev.id),
                        })
                    })
                }
            };
            entries.push(IndexedEvent { prev, now, change });
        }
        JournalIndex {
            base: self.map.journal_base + start as u64,
            entries,
        }
    }
}

/// A change a journal event stands for as the first of its key.
#[derive(Debug)]
enum Change {
    Hop1(Hop1Change),
    Hop2(Hop2Change),
}

#[derive(Debug)]
struct IndexedEvent {
    /// Index of the previous event of the same key (`u32::MAX`: none).
    prev: u32,
    /// Is the key in the view now?
    now: bool,
    change: Option<Change>,
}

/// See [`Mesh::journal_index`].
pub(super) struct JournalIndex {
    base: u64,
    entries: Vec<IndexedEvent>,
}

impl JournalIndex {
    /// Net changes of the view from journal position `pos` to now, in the
    /// order of each key's first event after `pos`.
    pub(super) fn changes_since(&self, pos: u64) -> (Vec<Hop1Change>, Vec<Hop2Change>) {
        let start = pos.saturating_sub(self.base) as usize;
        // The first event of its key in the suffix.
        let first = |e: &&IndexedEvent| e.prev == u32::MAX || (e.prev as usize) < start;
        let suffix = self.entries.get(start..).unwrap_or(&[]);
        // Counted first: each list allocated once, at its size (growing
        // them by pushes was ~3 % of a simulated join, page faults
        // included).
        let (mut n1, mut n2) = (0, 0);
        for e in suffix.iter().filter(first) {
            match &e.change {
                Some(Change::Hop1(_)) => n1 += 1,
                Some(Change::Hop2(_)) => n2 += 1,
                None => {}
            }
        }
        let mut h1 = Vec::with_capacity(n1);
        let mut h2 = Vec::with_capacity(n2);
        for e in suffix.iter().filter(first) {
            match &e.change {
                Some(Change::Hop1(c)) => h1.push(c.clone()),
                Some(Change::Hop2(c)) => h2.push(*c),
                None => {}
            }
        }
        (h1, h2)
    }
}

/// Sends `peer` the next RoutingDiff of its sequence, and counts it.
fn push_diff(
    stats: &mut Counters,
    out: &mut VecDeque<OutEvent>,
    st: &mut PeerSync,
    peer: NodeId,
    hop1_changes: Vec<Hop1Change>,
    hop2_changes: Vec<Hop2Change>,
) {
    st.out_seq += 1;
    stats.diffs_sent += 1;
    stats.diff_changes_sent += (hop1_changes.len() + hop2_changes.len()) as u64;
    out.push_back(OutEvent::Push {
        peer,
        msg: MeshMessage::RoutingDiff(RoutingDiff {
            version: PROTOCOL_VERSION,
            seq: st.out_seq,
            hop1_changes,
            hop2_changes,
        }),
    });
}
