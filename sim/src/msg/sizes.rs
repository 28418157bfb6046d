//! The wire size of every mesh message the simulator moves, without
//! encoding it.
//!
//! Cap'n Proto sizes are affine in the number of list elements: a
//! message's frame is a constant plus, per list, a fixed number of bytes
//! per element (a struct element, its 32-byte id, each of its addresses).
//! [`SizeModel::calibrate`] measures those constants once, by encoding
//! prototype messages with [`Message::to_frame`] (the real encoder) with 0
//! and 4 elements of each kind and taking the difference; [`SizeModel`]
//! then prices a message from its element counts in a few nanoseconds. The
//! test `size_model_matches_real_encodings` (in `sim/tests/msg.rs`) checks
//! it against real encodings of messages of many shapes. The model is
//! exact up to one 8 KB Cap'n Proto segment; beyond it the encoder adds
//! segment-table entries and far-pointer landing pads (+14 % on a 56 KB
//! diff), so [`SizeModel::push`] prices pushes above [`EXACT_ABOVE`] by
//! [`layout_len`]: the encoder's segment allocation replayed object by
//! object in write order (the first segment of 1,024 words, each new one
//! as large as all before, an object placed in its parent's segment if it
//! fits and else, with a one-word landing pad, in the first segment with
//! room), which gives the real frame length without building the message
//! (`layout_replays_the_encoder` checks it against real encodings of
//! thousands of shapes; until 2026-12-07 such pushes were encoded for
//! real once per shape). Requests and responses are bounded well below
//! one segment. All simulated addresses are IPv4; QUIC, stream and TLS
//! overhead is not counted.

use std::net::{Ipv4Addr, SocketAddr};

use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::frame::segment_table_bytes;
use distsoc_protocol::ids::{NodeId, PostId, WormId};
use distsoc_protocol::limits::MAX_SEGMENTS;
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::mesh::{MeshMessage, MeshRequest, MeshResponse, Refusal};
use distsoc_protocol::messages::common::{PeerAddress, SocketAddress};
use distsoc_protocol::messages::discovery::{
    AddressEntry, AddressRequest, AddressResponse, Hop1Change, Hop1ChangeKind, Hop1Entry,
    Hop2Change, Hop2ChangeKind, Hop2Entry, InitialMapSync, MapSyncRequest, RoutingDiff, WormHit,
    WormQuery, WormRequest, WormResponse,
};
use distsoc_protocol::messages::wire::Error as WireErrorMsg;
use distsoc_protocol::messages::Message;

/// Bytes of a framed message (code byte, segment table, segments) as the
/// real encoder produces it; 0 if it cannot be encoded.
pub fn frame_len(m: Message) -> u64 {
    m.to_frame().map_or(0, |f| f.len() as u64)
}

/// Pushes the model prices above this many bytes are encoded for real
/// (one Cap'n Proto segment is 8 KB; beyond it the encoding is not
/// affine).
pub const EXACT_ABOVE: u64 = 7_680;

/// Per-element byte costs of one message kind: `base` plus `per[i]` bytes
/// for each element of kind `i` (the kinds are listed at each message).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Affine {
    /// The message with every list empty.
    pub base: f64,
    /// Bytes per element, by element kind.
    pub per: [f64; 5],
}

impl Affine {
    fn price(&self, counts: [u64; 5]) -> u64 {
        let v: f64 = self.base
            + self
                .per
                .iter()
                .zip(counts)
                .map(|(p, c)| p * c as f64)
                .sum::<f64>();
        v.round().max(0.0) as u64
    }
}

/// The calibrated size model of every mesh message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SizeModel {
    /// RoutingDiff: hop-1 changes, their addresses, hop-2 changes.
    pub diff: Affine,
    /// InitialMapSync: hop-1 entries, their addresses, hop-2 entries.
    pub sync: Affine,
    /// MapSyncRequest.
    pub sync_request: Affine,
    /// WormRequest: targets, post ids, originator addresses, visited.
    pub worm_request: Affine,
    /// WormQuery: targets, post ids.
    pub worm_query: Affine,
    /// WormResponse: hits, hit addresses, `closest` present, its addresses.
    pub worm_response: Affine,
    /// AddressRequest: targets.
    pub address_request: Affine,
    /// AddressResponse: entries, found peers, their addresses, referrals.
    pub address_response: Affine,
    /// A wire `Error` (a refusal), without detail text.
    pub error: Affine,
}

/// Words of a Cap'n Proto struct: (data, pointers) of each struct the mesh
/// pushes carry (from the generated schema code).
mod words {
    pub(super) const INITIAL_MAP_SYNC: u32 = 3 + 3;
    pub(super) const ROUTING_DIFF: u32 = 2 + 2;
    pub(super) const HOP1_ENTRY: u32 = 1 + 1;
    pub(super) const HOP2_ENTRY: u32 = 1 + 1;
    pub(super) const HOP1_CHANGE: u32 = 1 + 2;
    pub(super) const HOP2_CHANGE: u32 = 1 + 1;
    pub(super) const PEER_ADDRESS: u32 = 2 + 2;
    pub(super) const SOCKET_ADDRESS: u32 = 1 + 1;
    /// A 32-byte id as `Data`.
    pub(super) const ID: u32 = 4;
}

/// The segment allocation of the `capnp` builder the encoder uses
/// (`Builder::new_default`: `HeapAllocator`, first segment 1,024 words,
/// `GrowHeuristically`: each new segment at least as large as all before),
/// replayed without memory: an object goes into the segment of the pointer
/// to it if it fits there, else (with a one-word landing pad for the far
/// pointer) into the first segment with room, else into a new segment.
struct Layout {
    /// (capacity, used) per segment, in words.
    segs: Vec<(u32, u32)>,
    next: u32,
}

impl Layout {
    /// The root pointer and a root struct of `words` words.
    fn root(words: u32) -> (Layout, usize) {
        let mut l = Layout {
            segs: Vec::new(),
            next: 1024,
        };
        l.new_segment(1);
        l.segs[0].1 = 1;
        let seg = l.alloc(0, words);
        (l, seg)
    }

    fn new_segment(&mut self, min: u32) {
        let size = min.max(self.next);
        self.next = self.next.saturating_add(size);
        self.segs.push((size, 0));
    }

    /// Places an object of `amount` words pointed to from segment `from`;
    /// returns its segment.
    fn alloc(&mut self, from: usize, amount: u32) -> usize {
        let (cap, used) = self.segs[from];
        if amount <= cap - used {
            self.segs[from].1 += amount;
            return from;
        }
        let amount = amount + 1;
        if let Some(k) = self.segs.iter().position(|(c, u)| amount <= c - u) {
            self.segs[k].1 += amount;
            return k;
        }
        self.new_segment(amount);
        let k = self.segs.len() - 1;
        self.segs[k].1 = amount;
        k
    }

    /// `n` objects of `amount` words each pointed to from `from`, placed
    /// as `n` calls of [`Layout::alloc`] place them, in bulk: a segment
    /// takes as many as fit at once (`from` stays full once it is, and
    /// the segments before the one found stay too small).
    fn alloc_n(&mut self, from: usize, n: usize, amount: u32) {
        let mut n = n as u64;
        if amount == 0 {
            return;
        }
        while n > 0 {
            let (cap, used) = self.segs[from];
            let fit = u64::from((cap - used) / amount).min(n);
            if fit > 0 {
                self.segs[from].1 += fit as u32 * amount;
                n -= fit;
                continue;
            }
            let a = amount + 1;
            let k = match self.segs.iter().position(|(c, u)| a <= c - u) {
                Some(k) => k,
                None => {
                    self.new_segment(a);
                    self.segs.len() - 1
                }
            };
            let (cap, used) = self.segs[k];
            let fit = u64::from((cap - used) / a).min(n);
            self.segs[k].1 += fit as u32 * a;
            n -= fit;
        }
    }

    /// A struct list of `n` elements of `words` words each (a tag word).
    fn list(&mut self, from: usize, n: usize, words: u32) -> usize {
        self.alloc(from, 1 + n as u32 * words)
    }

    /// A list of socket addresses pointed to from `from`.
    fn addresses(&mut self, from: usize, a: &[SocketAddress]) {
        let seg = self.list(from, a.len(), words::SOCKET_ADDRESS);
        for x in a {
            self.alloc(seg, if x.0.is_ipv4() { 1 } else { 2 });
        }
    }

    /// The frame's length: code byte, segment table, the used words.
    fn frame_len(&self, code: MessageCode) -> Option<u64> {
        let body: u64 = self.segs.iter().map(|(_, u)| u64::from(*u) * 8).sum();
        let size = segment_table_bytes(self.segs.len()) as u64 + body;
        (self.segs.len() <= MAX_SEGMENTS && size <= code.max_frame_bytes() as u64)
            .then_some(1 + size)
    }
}

/// The frame length the real encoder gives a RoutingDiff or an
/// InitialMapSync (its segment allocation replayed in write order),
/// without building it; `None` for a message it would refuse (over the
/// code's cap or the segment limit) and for a MapSyncRequest.
pub fn layout_len(m: &MeshMessage) -> Option<u64> {
    match m {
        MeshMessage::RoutingDiff(d) => {
            let (mut l, root) = Layout::root(words::ROUTING_DIFF);
            let h1 = l.list(root, d.hop1_changes.len(), words::HOP1_CHANGE);
            for c in &d.hop1_changes {
                l.alloc(h1, words::ID);
                l.addresses(h1, &c.addresses);
            }
            let h2 = l.list(root, d.hop2_changes.len(), words::HOP2_CHANGE);
            l.alloc_n(h2, d.hop2_changes.len(), words::ID);
            l.frame_len(MessageCode::RoutingDiff)
        }
        MeshMessage::InitialMapSync(s) => {
            let (mut l, root) = Layout::root(words::INITIAL_MAP_SYNC);
            let h1 = l.list(root, s.hop1.len(), words::HOP1_ENTRY);
            for e in &s.hop1 {
                let p = l.alloc(h1, words::PEER_ADDRESS);
                l.alloc(p, words::ID);
                l.addresses(p, &e.peer.addresses);
            }
            let h2 = l.list(root, s.hop2.len(), words::HOP2_ENTRY);
            l.alloc_n(h2, s.hop2.len(), words::ID);
            // A list of `Data`: one pointer word per element, no tag.
            let h3 = l.alloc(root, s.hop3.len() as u32);
            l.alloc_n(h3, s.hop3.len(), words::ID);
            l.frame_len(MessageCode::InitialMapSync)
        }
        MeshMessage::MapSyncRequest(_) => None,
    }
}

fn nid(i: u64) -> NodeId {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&i.to_le_bytes());
    b[31] = 0x5a;
    NodeId(b)
}

/// An IPv4 socket address (the simulator's address family).
pub fn v4(i: u64) -> SocketAddr {
    let b = (i as u32).to_be_bytes();
    SocketAddr::from((Ipv4Addr::new(10 | b[0], b[1], b[2], b[3]), 4433))
}

fn peer(i: u64, addrs: u64) -> PeerAddress {
    PeerAddress {
        node_id: nid(i),
        addresses: (0..addrs).map(|k| SocketAddress(v4(i + k))).collect(),
        is_anchor: false,
        last_seen_ms: 0,
    }
}

/// Prototype messages with the given element counts (shared by the
/// calibration and the test that checks it).
pub mod proto {
    use super::*;

    /// A RoutingDiff with `h1` hop-1 changes of `a` addresses each and
    /// `h2` hop-2 changes.
    pub fn diff(h1: u64, a: u64, h2: u64) -> RoutingDiff {
        RoutingDiff {
            version: PROTOCOL_VERSION,
            seq: 7,
            hop1_changes: (0..h1)
                .map(|i| Hop1Change {
                    node_id: nid(i),
                    kind: Hop1ChangeKind::Added,
                    addresses: (0..a).map(|k| SocketAddress(v4(i + k))).collect(),
                    is_anchor: false,
                    is_wide: i % 2 == 0,
                })
                .collect(),
            hop2_changes: (0..h2)
                .map(|i| Hop2Change {
                    node_id: nid(1000 + i),
                    kind: Hop2ChangeKind::Added,
                    is_anchor: false,
                })
                .collect(),
        }
    }

    /// An InitialMapSync chunk with `h1` hop-1 entries of `a` addresses and
    /// `h2` hop-2 entries.
    pub fn sync(h1: u64, a: u64, h2: u64) -> InitialMapSync {
        InitialMapSync {
            version: PROTOCOL_VERSION,
            seq: 0,
            hop1: (0..h1)
                .map(|i| Hop1Entry {
                    peer: peer(i, a),
                    is_wide: false,
                })
                .collect(),
            hop2: (0..h2)
                .map(|i| Hop2Entry {
                    node_id: nid(5000 + i),
                    is_anchor: false,
                })
                .collect(),
            hop3: Vec::new(),
            chunk_index: 0,
            chunk_count: 1,
        }
    }

    /// A WormRequest.
    pub fn worm_request(targets: u64, posts: u64, addrs: u64, visited: u64) -> WormRequest {
        WormRequest {
            version: PROTOCOL_VERSION,
            worm_id: WormId([3; 16]),
            targets: (0..targets).map(nid).collect(),
            post_ids: (0..posts).map(|i| PostId([i as u8; 32])).collect(),
            ttl: 4,
            originator: peer(99, addrs),
            visited: (0..visited).map(|i| nid(200 + i)).collect(),
        }
    }

    /// A WormQuery.
    pub fn worm_query(targets: u64, posts: u64) -> WormQuery {
        WormQuery {
            version: PROTOCOL_VERSION,
            worm_id: WormId([4; 16]),
            targets: (0..targets).map(nid).collect(),
            post_ids: (0..posts).map(|i| PostId([i as u8; 32])).collect(),
        }
    }

    /// A WormResponse with `hits` hits of `a` addresses each and, if
    /// `closest`, a closest node with `ca` addresses.
    pub fn worm_response(hits: u64, a: u64, closest: bool, ca: u64) -> WormResponse {
        WormResponse {
            version: PROTOCOL_VERSION,
            worm_id: WormId([5; 16]),
            hits: (0..hits)
                .map(|i| WormHit {
                    target: nid(i).0,
                    holder: peer(i, a),
                    hops: 1,
                })
                .collect(),
            closest: closest.then(|| peer(77, ca)),
        }
    }

    /// An AddressRequest.
    pub fn address_request(targets: u64) -> AddressRequest {
        AddressRequest {
            version: PROTOCOL_VERSION,
            targets: (0..targets).map(nid).collect(),
            depth: 1,
        }
    }

    /// An AddressResponse: `found` entries with a peer of `a` addresses,
    /// `referred` entries with a referral, `none` entries with neither.
    pub fn address_response(found: u64, a: u64, referred: u64, none: u64) -> AddressResponse {
        let mut entries = Vec::new();
        for i in 0..found {
            entries.push(AddressEntry {
                node_id: nid(i),
                peer: Some(peer(i, a)),
                referral: None,
            });
        }
        for i in 0..referred {
            entries.push(AddressEntry {
                node_id: nid(100 + i),
                peer: None,
                referral: Some(nid(300 + i)),
            });
        }
        for i in 0..none {
            entries.push(AddressEntry {
                node_id: nid(200 + i),
                peer: None,
                referral: None,
            });
        }
        AddressResponse {
            version: PROTOCOL_VERSION,
            entries,
        }
    }

    /// A refusal as the wire `Error` a runtime sends.
    pub fn error() -> WireErrorMsg {
        WireErrorMsg {
            version: PROTOCOL_VERSION,
            code: ErrorCode::RateLimited,
            message: String::new(),
            request_code: 0x10,
            retry_after_ms: 1000,
            min_version: 0,
            max_version: 0,
        }
    }
}

impl SizeModel {
    /// Measures the model with the real encoder (a few dozen encodings).
    pub fn calibrate() -> Self {
        use proto::*;
        // Addresses exist only inside a parent element: priced per address
        // with the parents present.
        let diff_m = Affine {
            base: frame_len(diff(0, 0, 0).into()) as f64,
            per: [
                (frame_len(diff(4, 0, 0).into()) as f64 - frame_len(diff(0, 0, 0).into()) as f64)
                    / 4.0,
                (frame_len(diff(4, 1, 0).into()) as f64 - frame_len(diff(4, 0, 0).into()) as f64)
                    / 4.0,
                (frame_len(diff(0, 0, 4).into()) as f64 - frame_len(diff(0, 0, 0).into()) as f64)
                    / 4.0,
                0.0,
                0.0,
            ],
        };
        let sync_m = Affine {
            base: frame_len(sync(0, 0, 0).into()) as f64,
            per: [
                (frame_len(sync(4, 0, 0).into()) as f64 - frame_len(sync(0, 0, 0).into()) as f64)
                    / 4.0,
                (frame_len(sync(4, 1, 0).into()) as f64 - frame_len(sync(4, 0, 0).into()) as f64)
                    / 4.0,
                (frame_len(sync(0, 0, 4).into()) as f64 - frame_len(sync(0, 0, 0).into()) as f64)
                    / 4.0,
                0.0,
                0.0,
            ],
        };
        let wr = |t, p, a, v| frame_len(worm_request(t, p, a, v).into()) as f64;
        let worm_request_m = Affine {
            base: wr(0, 0, 0, 0),
            per: [
                (wr(4, 0, 0, 0) - wr(0, 0, 0, 0)) / 4.0,
                (wr(0, 4, 0, 0) - wr(0, 0, 0, 0)) / 4.0,
                (wr(0, 0, 4, 0) - wr(0, 0, 0, 0)) / 4.0,
                (wr(0, 0, 0, 4) - wr(0, 0, 0, 0)) / 4.0,
                0.0,
            ],
        };
        let wq = |t, p| frame_len(worm_query(t, p).into()) as f64;
        let worm_query_m = Affine {
            base: wq(0, 0),
            per: [
                (wq(4, 0) - wq(0, 0)) / 4.0,
                (wq(0, 4) - wq(0, 0)) / 4.0,
                0.0,
                0.0,
                0.0,
            ],
        };
        let ws = |h, a, c, ca| frame_len(worm_response(h, a, c, ca).into()) as f64;
        let worm_response_m = Affine {
            base: ws(0, 0, false, 0),
            per: [
                (ws(4, 0, false, 0) - ws(0, 0, false, 0)) / 4.0,
                (ws(4, 1, false, 0) - ws(4, 0, false, 0)) / 4.0,
                ws(0, 0, true, 0) - ws(0, 0, false, 0),
                (ws(0, 0, true, 4) - ws(0, 0, true, 0)) / 4.0,
                0.0,
            ],
        };
        let ar = |t| frame_len(address_request(t).into()) as f64;
        let address_request_m = Affine {
            base: ar(0),
            per: [(ar(4) - ar(0)) / 4.0, 0.0, 0.0, 0.0, 0.0],
        };
        let an = |f, a, r, n| frame_len(address_response(f, a, r, n).into()) as f64;
        let address_response_m = Affine {
            base: an(0, 0, 0, 0),
            per: [
                (an(0, 0, 0, 4) - an(0, 0, 0, 0)) / 4.0,
                // A found entry beyond a plain one.
                (an(4, 0, 0, 0) - an(0, 0, 0, 4)) / 4.0,
                (an(4, 1, 0, 0) - an(4, 0, 0, 0)) / 4.0,
                (an(0, 0, 4, 0) - an(0, 0, 0, 4)) / 4.0,
                0.0,
            ],
        };
        let e = frame_len(proto::error().into()) as f64;
        SizeModel {
            diff: diff_m,
            sync: sync_m,
            sync_request: Affine {
                base: frame_len(
                    MapSyncRequest {
                        version: PROTOCOL_VERSION,
                        last_seq: 3,
                    }
                    .into(),
                ) as f64,
                per: [0.0; 5],
            },
            worm_request: worm_request_m,
            worm_query: worm_query_m,
            worm_response: worm_response_m,
            address_request: address_request_m,
            address_response: address_response_m,
            error: Affine {
                base: e,
                per: [0.0; 5],
            },
        }
    }

    /// Bytes of a push.
    pub fn message(&self, m: &MeshMessage) -> u64 {
        match m {
            MeshMessage::RoutingDiff(d) => self.diff.price([
                d.hop1_changes.len() as u64,
                d.hop1_changes
                    .iter()
                    .map(|c| c.addresses.len() as u64)
                    .sum(),
                d.hop2_changes.len() as u64,
                0,
                0,
            ]),
            MeshMessage::InitialMapSync(s) => self.sync.price([
                s.hop1.len() as u64,
                s.hop1.iter().map(|e| e.peer.addresses.len() as u64).sum(),
                s.hop2.len() as u64,
                0,
                0,
            ]),
            MeshMessage::MapSyncRequest(_) => self.sync_request.price([0; 5]),
        }
    }

    /// Bytes of a push, exact: the model up to [`EXACT_ABOVE`] bytes,
    /// [`layout_len`] above it (the model's estimate for a message the
    /// encoder would refuse).
    pub fn push(&self, m: &MeshMessage) -> u64 {
        let est = self.message(m);
        if est <= EXACT_ABOVE {
            return est;
        }
        layout_len(m).unwrap_or(est)
    }

    /// Bytes of a request.
    pub fn request(&self, r: &MeshRequest) -> u64 {
        match r {
            MeshRequest::Worm(w) => self.worm_request.price([
                w.targets.len() as u64,
                w.post_ids.len() as u64,
                w.originator.addresses.len() as u64,
                w.visited.len() as u64,
                0,
            ]),
            MeshRequest::Query(q) => {
                self.worm_query
                    .price([q.targets.len() as u64, q.post_ids.len() as u64, 0, 0, 0])
            }
            MeshRequest::Address(a) => {
                self.address_request
                    .price([a.targets.len() as u64, 0, 0, 0, 0])
            }
        }
    }

    /// Bytes of a response (or of the `Error` a refusal becomes).
    pub fn response(&self, r: &Result<MeshResponse, Refusal>) -> u64 {
        match r {
            Ok(MeshResponse::Worm(w)) => self.worm_response.price([
                w.hits.len() as u64,
                w.hits.iter().map(|h| h.holder.addresses.len() as u64).sum(),
                u64::from(w.closest.is_some()),
                w.closest.as_ref().map_or(0, |c| c.addresses.len() as u64),
                0,
            ]),
            Ok(MeshResponse::Address(a)) => self.address_response.price([
                a.entries.len() as u64,
                a.entries.iter().filter(|e| e.peer.is_some()).count() as u64,
                a.entries
                    .iter()
                    .filter_map(|e| e.peer.as_ref())
                    .map(|p| p.addresses.len() as u64)
                    .sum(),
                a.entries.iter().filter(|e| e.referral.is_some()).count() as u64,
                0,
            ]),
            Err(_) => self.error.price([0; 5]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Layout;

    /// `alloc_n` places objects exactly as `alloc` one by one does, also
    /// across segment boundaries and with objects pointed to from a
    /// segment that filled up.
    #[test]
    fn alloc_n_is_alloc_repeated() {
        for first in [0u32, 1, 3, 700, 1022, 1023, 1024, 5000] {
            for amount in [1u32, 2, 3, 4, 7, 1025] {
                for n in [0usize, 1, 2, 100, 255, 256, 257, 1000, 3000] {
                    let (mut a, root) = Layout::root(1);
                    let from = a.alloc(root, first);
                    let (mut b, root_b) = Layout::root(1);
                    assert_eq!(b.alloc(root_b, first), from);
                    for _ in 0..n {
                        a.alloc(from, amount);
                    }
                    b.alloc_n(from, n, amount);
                    assert_eq!(a.segs, b.segs, "first {first} amount {amount} n {n}");
                    assert_eq!(a.next, b.next);
                }
            }
        }
    }
}
