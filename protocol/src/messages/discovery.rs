//! Domain types of `schema/discovery.capnp`: the 3-hop map gossip
//! (RoutingDiff, InitialMapSync), bootstrap, worm lookups and address
//! resolution.

use distsoc_schema::discovery_capnp;

use super::common::{read_addresses, write_addresses, PeerAddress, SocketAddress};
use crate::codec::{
    self, len32, node_ids, optional, post_ids, required, structs, write_ids, write_structs, Struct,
    WireMessage,
};
use crate::codes::MessageCode;
use crate::error::DecodeError;
use crate::ids::{NodeId, PostId, WormId};
use crate::limits::BOOTSTRAP_MAX_PEERS;

/// Most hop-1 changes in a [`RoutingDiff`].
pub const MAX_HOP1_CHANGES: usize = 1024;
/// Most hop-2 changes in a [`RoutingDiff`].
pub const MAX_HOP2_CHANGES: usize = 16_384;
/// Most hop-1 entries in an [`InitialMapSync`].
pub const MAX_HOP1_ENTRIES: usize = 1024;
/// Most hop-2 entries in an [`InitialMapSync`].
pub const MAX_HOP2_ENTRIES: usize = 65_536;
/// Most hop-3 NodeIds in one [`InitialMapSync`] chunk.
pub const MAX_HOP3_ENTRIES: usize = 400_000;
/// Most NodeIds in [`BootstrapRequest::exclude`]: as many as fit the
/// request's 4 KiB frame cap (each costs a list pointer and 4 words).
pub const MAX_BOOTSTRAP_EXCLUDE: usize = 96;
/// Most NodeId targets of a worm search.
pub const MAX_WORM_TARGETS: usize = 16;
/// Most PostId targets of a worm search.
pub const MAX_WORM_POST_IDS: usize = 16;
/// Largest remaining forwarding count of a [`WormRequest`].
pub const MAX_WORM_TTL: u8 = 5;
/// Most visited NodeIds carried by a [`WormRequest`].
pub const MAX_WORM_VISITED: usize = 64;
/// Most hits in a [`WormResponse`].
pub const MAX_WORM_HITS: usize = 32;
/// Largest map distance of a [`WormHit`].
pub const MAX_WORM_HIT_HOPS: u8 = 3;
/// Most targets of an [`AddressRequest`] (and so entries of an
/// [`AddressResponse`], one per target).
pub const MAX_ADDRESS_TARGETS: usize = 64;
/// Largest [`AddressRequest::depth`]: referral steps a responder may take on
/// the requester's behalf (schema/README.md §13.7).
pub const MAX_ADDRESS_DEPTH: u8 = 2;
/// Most targets of one [`AddressRequest`] a responder resolves recursively
/// (`depth > 0`); the others are answered from its own map as if `depth`
/// were 0 (schema/README.md §13.7).
pub const MAX_RECURSIVE_ADDRESS_TARGETS: usize = 8;

/// `ChangeKind` of a [`Hop1Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hop1ChangeKind {
    /// The node became known.
    Added,
    /// The node is no longer known.
    Removed,
    /// The node's address changed.
    AddressChanged,
}

impl Hop1ChangeKind {
    fn from_wire(
        k: Result<discovery_capnp::ChangeKind, capnp::NotInSchema>,
    ) -> Result<Self, DecodeError> {
        match k {
            Ok(discovery_capnp::ChangeKind::Added) => Ok(Self::Added),
            Ok(discovery_capnp::ChangeKind::Removed) => Ok(Self::Removed),
            Ok(discovery_capnp::ChangeKind::AddressChanged) => Ok(Self::AddressChanged),
            Err(_) => Err(DecodeError::UnknownVariant("kind")),
        }
    }

    fn to_wire(self) -> discovery_capnp::ChangeKind {
        match self {
            Self::Added => discovery_capnp::ChangeKind::Added,
            Self::Removed => discovery_capnp::ChangeKind::Removed,
            Self::AddressChanged => discovery_capnp::ChangeKind::AddressChanged,
        }
    }
}

/// `ChangeKind` of a [`Hop2Change`]: `addressChanged` is not valid there, so
/// it is not representable (decoding it is [`DecodeError::Invalid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hop2ChangeKind {
    /// The node became known.
    Added,
    /// The node is no longer known.
    Removed,
}

impl Hop2ChangeKind {
    fn from_wire(
        k: Result<discovery_capnp::ChangeKind, capnp::NotInSchema>,
    ) -> Result<Self, DecodeError> {
        match k {
            Ok(discovery_capnp::ChangeKind::Added) => Ok(Self::Added),
            Ok(discovery_capnp::ChangeKind::Removed) => Ok(Self::Removed),
            Ok(discovery_capnp::ChangeKind::AddressChanged) => Err(DecodeError::Invalid {
                field: "kind",
                reason: "addressChanged is not valid in a hop-2 change",
            }),
            Err(_) => Err(DecodeError::UnknownVariant("kind")),
        }
    }

    fn to_wire(self) -> discovery_capnp::ChangeKind {
        match self {
            Self::Added => discovery_capnp::ChangeKind::Added,
            Self::Removed => discovery_capnp::ChangeKind::Removed,
        }
    }
}

/// `Hop1Change`: a change among the sender's direct connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hop1Change {
    /// The node concerned.
    pub node_id: NodeId,
    /// What changed.
    pub kind: Hop1ChangeKind,
    /// For `Added` / `AddressChanged`: current addresses (at most
    /// [`MAX_ADDRESSES`](super::common::MAX_ADDRESSES); extra entries on the wire are ignored). Empty for
    /// `Removed`.
    pub addresses: Vec<SocketAddress>,
    /// The node declared the anchor role.
    pub is_anchor: bool,
    /// The node is one of the sender's wide peers.
    pub is_wide: bool,
}

impl Struct for Hop1Change {
    type Schema = discovery_capnp::hop1_change::Owned;

    fn read(r: discovery_capnp::hop1_change::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: NodeId(codec::id("nodeId", r.get_node_id())?),
            kind: Hop1ChangeKind::from_wire(r.get_kind())?,
            addresses: read_addresses(r.get_addresses())?,
            is_anchor: r.get_is_anchor(),
            is_wide: r.get_is_wide(),
        })
    }

    fn write(&self, mut b: discovery_capnp::hop1_change::Builder<'_>) {
        b.set_node_id(self.node_id.as_bytes());
        b.set_kind(self.kind.to_wire());
        write_addresses(
            b.reborrow().init_addresses(len32(&self.addresses)),
            &self.addresses,
        );
        b.set_is_anchor(self.is_anchor);
        b.set_is_wide(self.is_wide);
    }
}

/// `Hop2Change`: a change in the sender's hop-2 view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hop2Change {
    /// The node concerned.
    pub node_id: NodeId,
    /// Added or removed.
    pub kind: Hop2ChangeKind,
    /// The node declared the anchor role.
    pub is_anchor: bool,
}

impl Struct for Hop2Change {
    type Schema = discovery_capnp::hop2_change::Owned;

    fn read(r: discovery_capnp::hop2_change::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: NodeId(codec::id("nodeId", r.get_node_id())?),
            kind: Hop2ChangeKind::from_wire(r.get_kind())?,
            is_anchor: r.get_is_anchor(),
        })
    }

    fn write(&self, mut b: discovery_capnp::hop2_change::Builder<'_>) {
        b.set_node_id(self.node_id.as_bytes());
        b.set_kind(self.kind.to_wire());
        b.set_is_anchor(self.is_anchor);
    }
}

/// Code 0x01, push: the changes in the sender's view since its previous diff
/// to this receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingDiff {
    /// Version of this message.
    pub version: u16,
    /// Per-(sender, receiver) counter, +1 per diff; a gap means a missed diff.
    pub seq: u64,
    /// Changes among the sender's direct connections (at most
    /// [`MAX_HOP1_CHANGES`]).
    pub hop1_changes: Vec<Hop1Change>,
    /// Changes in the sender's hop-2 view (at most [`MAX_HOP2_CHANGES`]).
    pub hop2_changes: Vec<Hop2Change>,
}

impl Struct for RoutingDiff {
    type Schema = discovery_capnp::routing_diff::Owned;

    fn read(r: discovery_capnp::routing_diff::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            seq: r.get_seq(),
            hop1_changes: structs("hop1Changes", r.get_hop1_changes(), MAX_HOP1_CHANGES)?,
            hop2_changes: structs("hop2Changes", r.get_hop2_changes(), MAX_HOP2_CHANGES)?,
        })
    }

    fn write(&self, mut b: discovery_capnp::routing_diff::Builder<'_>) {
        b.set_version(self.version);
        b.set_seq(self.seq);
        write_structs(
            b.reborrow().init_hop1_changes(len32(&self.hop1_changes)),
            &self.hop1_changes,
        );
        write_structs(
            b.reborrow().init_hop2_changes(len32(&self.hop2_changes)),
            &self.hop2_changes,
        );
    }
}

impl WireMessage for RoutingDiff {
    const CODE: MessageCode = MessageCode::RoutingDiff;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &discovery_capnp::routing_diff::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// `Hop1Entry`: a direct connection of the sender, in a full map.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hop1Entry {
    /// The peer, with addresses (required).
    pub peer: PeerAddress,
    /// The peer is one of the sender's wide peers.
    pub is_wide: bool,
}

impl Struct for Hop1Entry {
    type Schema = discovery_capnp::hop1_entry::Owned;

    fn read(r: discovery_capnp::hop1_entry::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            peer: required("peer", r.has_peer(), r.get_peer(), PeerAddress::read)?,
            is_wide: r.get_is_wide(),
        })
    }

    fn write(&self, mut b: discovery_capnp::hop1_entry::Builder<'_>) {
        self.peer.write(b.reborrow().init_peer());
        b.set_is_wide(self.is_wide);
    }
}

/// `Hop2Entry`: a node the sender's peers report, in a full map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hop2Entry {
    /// The node.
    pub node_id: NodeId,
    /// The node declared the anchor role.
    pub is_anchor: bool,
}

impl Struct for Hop2Entry {
    type Schema = discovery_capnp::hop2_entry::Owned;

    fn read(r: discovery_capnp::hop2_entry::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: NodeId(codec::id("nodeId", r.get_node_id())?),
            is_anchor: r.get_is_anchor(),
        })
    }

    fn write(&self, mut b: discovery_capnp::hop2_entry::Builder<'_>) {
        b.set_node_id(self.node_id.as_bytes());
        b.set_is_anchor(self.is_anchor);
    }
}

/// Code 0x02, push: one chunk of the sender's full map, sent once on a new
/// connection.
///
/// Decoding checks `chunk_count >= 1` and `chunk_index < chunk_count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMapSync {
    /// Version of this message.
    pub version: u16,
    /// The RoutingDiff seq this map corresponds to; diffs continue at seq+1.
    pub seq: u64,
    /// Direct connections (at most [`MAX_HOP1_ENTRIES`]).
    pub hop1: Vec<Hop1Entry>,
    /// Hop-2 view (at most [`MAX_HOP2_ENTRIES`]).
    pub hop2: Vec<Hop2Entry>,
    /// Always empty: a sender MUST send it empty and a receiver ignores it
    /// (a peer's hop 3 is the receiver's hop 4, outside its 3-hop map;
    /// schema/README.md §13.4). Decoded (at most [`MAX_HOP3_ENTRIES`]) for
    /// compatibility only.
    pub hop3: Vec<NodeId>,
    /// 0-based index of this chunk.
    pub chunk_index: u32,
    /// Number of chunks in this map (at least 1).
    pub chunk_count: u32,
}

impl Struct for InitialMapSync {
    type Schema = discovery_capnp::initial_map_sync::Owned;

    fn read(r: discovery_capnp::initial_map_sync::Reader<'_>) -> Result<Self, DecodeError> {
        let chunk_index = r.get_chunk_index();
        let chunk_count = r.get_chunk_count();
        if chunk_count == 0 {
            return Err(DecodeError::Invalid {
                field: "chunkCount",
                reason: "must be at least 1",
            });
        }
        if chunk_index >= chunk_count {
            return Err(DecodeError::Invalid {
                field: "chunkIndex",
                reason: "must be less than chunkCount",
            });
        }
        Ok(Self {
            version: r.get_version(),
            seq: r.get_seq(),
            hop1: structs("hop1", r.get_hop1(), MAX_HOP1_ENTRIES)?,
            hop2: structs("hop2", r.get_hop2(), MAX_HOP2_ENTRIES)?,
            hop3: node_ids("hop3", r.get_hop3(), MAX_HOP3_ENTRIES)?,
            chunk_index,
            chunk_count,
        })
    }

    fn write(&self, mut b: discovery_capnp::initial_map_sync::Builder<'_>) {
        b.set_version(self.version);
        b.set_seq(self.seq);
        write_structs(b.reborrow().init_hop1(len32(&self.hop1)), &self.hop1);
        write_structs(b.reborrow().init_hop2(len32(&self.hop2)), &self.hop2);
        write_ids(b.reborrow().init_hop3(len32(&self.hop3)), &self.hop3);
        b.set_chunk_index(self.chunk_index);
        b.set_chunk_count(self.chunk_count);
    }
}

impl WireMessage for InitialMapSync {
    const CODE: MessageCode = MessageCode::InitialMapSync;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &discovery_capnp::initial_map_sync::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x06, push: "I lost track of your diffs; send me a fresh
/// [`InitialMapSync`]" (after a gap in the RoutingDiff `seq`,
/// schema/README.md §13.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSyncRequest {
    /// Version of this message.
    pub version: u16,
    /// The `seq` of the last RoutingDiff (or InitialMapSync) the requester
    /// applied from this peer; 0 if none. Diagnostics only.
    pub last_seq: u64,
}

impl Struct for MapSyncRequest {
    type Schema = discovery_capnp::map_sync_request::Owned;

    fn read(r: discovery_capnp::map_sync_request::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            last_seq: r.get_last_seq(),
        })
    }

    fn write(&self, mut b: discovery_capnp::map_sync_request::Builder<'_>) {
        b.set_version(self.version);
        b.set_last_seq(self.last_seq);
    }
}

impl WireMessage for MapSyncRequest {
    const CODE: MessageCode = MessageCode::MapSyncRequest;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &discovery_capnp::map_sync_request::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x03, request: "I'm new, give me diverse peers".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapRequest {
    /// Version of this message.
    pub version: u16,
    /// How many peers are wanted, as sent (use [`Self::effective_want`]).
    pub want: u16,
    /// NodeIds the requester already knows (at most
    /// [`MAX_BOOTSTRAP_EXCLUDE`]).
    pub exclude: Vec<NodeId>,
}

impl BootstrapRequest {
    /// `want` clamped to [`BOOTSTRAP_MAX_PEERS`]; 0 means the default,
    /// [`BOOTSTRAP_MAX_PEERS`].
    pub fn effective_want(&self) -> usize {
        match usize::from(self.want) {
            0 => BOOTSTRAP_MAX_PEERS,
            n => n.min(BOOTSTRAP_MAX_PEERS),
        }
    }
}

impl Struct for BootstrapRequest {
    type Schema = discovery_capnp::bootstrap_request::Owned;

    fn read(r: discovery_capnp::bootstrap_request::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            want: r.get_want(),
            exclude: node_ids("exclude", r.get_exclude(), MAX_BOOTSTRAP_EXCLUDE)?,
        })
    }

    fn write(&self, mut b: discovery_capnp::bootstrap_request::Builder<'_>) {
        b.set_version(self.version);
        b.set_want(self.want);
        write_ids(
            b.reborrow().init_exclude(len32(&self.exclude)),
            &self.exclude,
        );
    }
}

impl WireMessage for BootstrapRequest {
    const CODE: MessageCode = MessageCode::BootstrapRequest;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &discovery_capnp::bootstrap_request::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x04, response to [`BootstrapRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapResponse {
    /// Version of this message.
    pub version: u16,
    /// Recently seen peers chosen for diversity (at most
    /// [`BOOTSTRAP_MAX_PEERS`]).
    pub peers: Vec<PeerAddress>,
}

impl Struct for BootstrapResponse {
    type Schema = discovery_capnp::bootstrap_response::Owned;

    fn read(r: discovery_capnp::bootstrap_response::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            peers: structs("peers", r.get_peers(), BOOTSTRAP_MAX_PEERS)?,
        })
    }

    fn write(&self, mut b: discovery_capnp::bootstrap_response::Builder<'_>) {
        b.set_version(self.version);
        write_structs(b.reborrow().init_peers(len32(&self.peers)), &self.peers);
    }
}

impl WireMessage for BootstrapResponse {
    const CODE: MessageCode = MessageCode::BootstrapResponse;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &discovery_capnp::bootstrap_response::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x10, request: a forwarded search for nodes or posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WormRequest {
    /// Version of this message.
    pub version: u16,
    /// Random id chosen by the originator; a WormRequest with an id seen in
    /// the last 60 s is answered with an empty WormResponse.
    pub worm_id: WormId,
    /// NodeIds sought (at most [`MAX_WORM_TARGETS`]).
    pub targets: Vec<NodeId>,
    /// PostIds sought (at most [`MAX_WORM_POST_IDS`]).
    pub post_ids: Vec<PostId>,
    /// Remaining forwarding hops, at most [`MAX_WORM_TTL`] (0 = answer, do
    /// not forward).
    pub ttl: u8,
    /// The node that started the worm, as it claims (required).
    /// Informational, and the key of per-origin rate limits; answers travel
    /// back along the chain, never to it directly.
    pub originator: PeerAddress,
    /// NodeIds already visited (at most [`MAX_WORM_VISITED`]).
    pub visited: Vec<NodeId>,
}

impl Struct for WormRequest {
    type Schema = discovery_capnp::worm_request::Owned;

    fn read(r: discovery_capnp::worm_request::Reader<'_>) -> Result<Self, DecodeError> {
        let ttl = r.get_ttl();
        if ttl > MAX_WORM_TTL {
            return Err(DecodeError::Invalid {
                field: "ttl",
                reason: "greater than 5",
            });
        }
        Ok(Self {
            version: r.get_version(),
            worm_id: WormId(codec::id("wormId", r.get_worm_id())?),
            targets: node_ids("targets", r.get_targets(), MAX_WORM_TARGETS)?,
            post_ids: post_ids("postIds", r.get_post_ids(), MAX_WORM_POST_IDS)?,
            ttl,
            originator: required(
                "originator",
                r.has_originator(),
                r.get_originator(),
                PeerAddress::read,
            )?,
            visited: node_ids("visited", r.get_visited(), MAX_WORM_VISITED)?,
        })
    }

    fn write(&self, mut b: discovery_capnp::worm_request::Builder<'_>) {
        b.set_version(self.version);
        b.set_worm_id(self.worm_id.as_bytes());
        write_ids(
            b.reborrow().init_targets(len32(&self.targets)),
            &self.targets,
        );
        write_ids(
            b.reborrow().init_post_ids(len32(&self.post_ids)),
            &self.post_ids,
        );
        b.set_ttl(self.ttl);
        self.originator.write(b.reborrow().init_originator());
        write_ids(
            b.reborrow().init_visited(len32(&self.visited)),
            &self.visited,
        );
    }
}

impl WireMessage for WormRequest {
    const CODE: MessageCode = MessageCode::WormRequest;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &discovery_capnp::worm_request::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x11, request: a one-hop "do you know any of these?" check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WormQuery {
    /// Version of this message.
    pub version: u16,
    /// The worm this query belongs to.
    pub worm_id: WormId,
    /// NodeIds sought (at most [`MAX_WORM_TARGETS`]).
    pub targets: Vec<NodeId>,
    /// PostIds sought (at most [`MAX_WORM_POST_IDS`]).
    pub post_ids: Vec<PostId>,
}

impl Struct for WormQuery {
    type Schema = discovery_capnp::worm_query::Owned;

    fn read(r: discovery_capnp::worm_query::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            worm_id: WormId(codec::id("wormId", r.get_worm_id())?),
            targets: node_ids("targets", r.get_targets(), MAX_WORM_TARGETS)?,
            post_ids: post_ids("postIds", r.get_post_ids(), MAX_WORM_POST_IDS)?,
        })
    }

    fn write(&self, mut b: discovery_capnp::worm_query::Builder<'_>) {
        b.set_version(self.version);
        b.set_worm_id(self.worm_id.as_bytes());
        write_ids(
            b.reborrow().init_targets(len32(&self.targets)),
            &self.targets,
        );
        write_ids(
            b.reborrow().init_post_ids(len32(&self.post_ids)),
            &self.post_ids,
        );
    }
}

impl WireMessage for WormQuery {
    const CODE: MessageCode = MessageCode::WormQuery;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &discovery_capnp::worm_query::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// `WormHit`: one found target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WormHit {
    /// The NodeId or PostId found (the wire does not say which: match it
    /// against the worm's `targets` and `post_ids`).
    pub target: [u8; 32],
    /// For a NodeId: the target with its addresses; for a PostId: a holder.
    pub holder: PeerAddress,
    /// Distance of the hit from the node that found it (relays pass hits on
    /// unchanged), at most
    /// [`MAX_WORM_HIT_HOPS`].
    pub hops: u8,
}

impl Struct for WormHit {
    type Schema = discovery_capnp::worm_hit::Owned;

    fn read(r: discovery_capnp::worm_hit::Reader<'_>) -> Result<Self, DecodeError> {
        let hops = r.get_hops();
        if hops > MAX_WORM_HIT_HOPS {
            return Err(DecodeError::Invalid {
                field: "hops",
                reason: "greater than 3",
            });
        }
        Ok(Self {
            target: codec::id("target", r.get_target())?,
            holder: required("holder", r.has_holder(), r.get_holder(), PeerAddress::read)?,
            hops,
        })
    }

    fn write(&self, mut b: discovery_capnp::worm_hit::Builder<'_>) {
        b.set_target(&self.target);
        self.holder.write(b.reborrow().init_holder());
        b.set_hops(self.hops);
    }
}

/// Code 0x12: answer to [`WormRequest`] / [`WormQuery`] on their stream
/// (answers travel back along the worm's chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WormResponse {
    /// Version of this message.
    pub version: u16,
    /// The worm answered.
    pub worm_id: WormId,
    /// What was found (at most [`MAX_WORM_HITS`]).
    pub hits: Vec<WormHit>,
    /// When there is no hit: the node XOR-closest to the first target, with
    /// addresses, that the responder and the relays after it know. `None`
    /// when absent on the wire.
    pub closest: Option<PeerAddress>,
}

impl Struct for WormResponse {
    type Schema = discovery_capnp::worm_response::Owned;

    fn read(r: discovery_capnp::worm_response::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            worm_id: WormId(codec::id("wormId", r.get_worm_id())?),
            hits: structs("hits", r.get_hits(), MAX_WORM_HITS)?,
            closest: optional(r.has_closest(), r.get_closest(), PeerAddress::read)?,
        })
    }

    fn write(&self, mut b: discovery_capnp::worm_response::Builder<'_>) {
        b.set_version(self.version);
        b.set_worm_id(self.worm_id.as_bytes());
        write_structs(b.reborrow().init_hits(len32(&self.hits)), &self.hits);
        if let Some(c) = &self.closest {
            c.write(b.reborrow().init_closest());
        }
    }
}

impl WireMessage for WormResponse {
    const CODE: MessageCode = MessageCode::WormResponse;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &discovery_capnp::worm_response::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x20, request: current addresses of nodes.
///
/// Decoding checks `depth <= MAX_ADDRESS_DEPTH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRequest {
    /// Version of this message.
    pub version: u16,
    /// NodeIds to resolve (at most [`MAX_ADDRESS_TARGETS`]).
    pub targets: Vec<NodeId>,
    /// Referral steps the responder may take on the requester's behalf, at
    /// most [`MAX_ADDRESS_DEPTH`] (0 = answer from its own map, with
    /// referrals).
    pub depth: u8,
}

impl Struct for AddressRequest {
    type Schema = discovery_capnp::address_request::Owned;

    fn read(r: discovery_capnp::address_request::Reader<'_>) -> Result<Self, DecodeError> {
        let depth = r.get_depth();
        if depth > MAX_ADDRESS_DEPTH {
            return Err(DecodeError::Invalid {
                field: "depth",
                reason: "greater than 2",
            });
        }
        Ok(Self {
            version: r.get_version(),
            targets: node_ids("targets", r.get_targets(), MAX_ADDRESS_TARGETS)?,
            depth,
        })
    }

    fn write(&self, mut b: discovery_capnp::address_request::Builder<'_>) {
        b.set_version(self.version);
        write_ids(
            b.reborrow().init_targets(len32(&self.targets)),
            &self.targets,
        );
        b.set_depth(self.depth);
    }
}

impl WireMessage for AddressRequest {
    const CODE: MessageCode = MessageCode::AddressRequest;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &discovery_capnp::address_request::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// `AddressEntry`: the answer for one target.
///
/// On the wire `found` is a separate flag; here it is `peer.is_some()`. A
/// `found` entry without `peer` is [`DecodeError::Missing`]; a `peer` whose
/// NodeId differs from `node_id` is [`DecodeError::Invalid`]; a `peer` sent
/// with `found = false` is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddressEntry {
    /// The NodeId asked for.
    pub node_id: NodeId,
    /// The node's addresses and last-seen time, when found.
    pub peer: Option<PeerAddress>,
    /// When the responder knows the node only at hop 2 or 3 and did not
    /// resolve it itself: a peer that reports it (ask that peer).
    pub referral: Option<NodeId>,
}

impl AddressEntry {
    /// The wire `found` flag.
    pub fn found(&self) -> bool {
        self.peer.is_some()
    }
}

impl Struct for AddressEntry {
    type Schema = discovery_capnp::address_entry::Owned;

    fn read(r: discovery_capnp::address_entry::Reader<'_>) -> Result<Self, DecodeError> {
        let node_id = NodeId(codec::id("nodeId", r.get_node_id())?);
        let peer = if r.get_found() {
            let peer = required("peer", r.has_peer(), r.get_peer(), PeerAddress::read)?;
            if peer.node_id != node_id {
                return Err(DecodeError::Invalid {
                    field: "peer",
                    reason: "nodeId differs from the entry's nodeId",
                });
            }
            Some(peer)
        } else {
            None
        };
        Ok(Self {
            node_id,
            peer,
            referral: codec::opt_id("referral", r.get_referral())?.map(NodeId),
        })
    }

    fn write(&self, mut b: discovery_capnp::address_entry::Builder<'_>) {
        b.set_node_id(self.node_id.as_bytes());
        b.set_found(self.peer.is_some());
        if let Some(p) = &self.peer {
            p.write(b.reborrow().init_peer());
        }
        if let Some(r) = &self.referral {
            b.set_referral(r.as_bytes());
        }
    }
}

/// Code 0x21, response to [`AddressRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressResponse {
    /// Version of this message.
    pub version: u16,
    /// One entry per requested target, in request order (at most
    /// [`MAX_ADDRESS_TARGETS`]).
    pub entries: Vec<AddressEntry>,
}

impl Struct for AddressResponse {
    type Schema = discovery_capnp::address_response::Owned;

    fn read(r: discovery_capnp::address_response::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            entries: structs("entries", r.get_entries(), MAX_ADDRESS_TARGETS)?,
        })
    }

    fn write(&self, mut b: discovery_capnp::address_response::Builder<'_>) {
        b.set_version(self.version);
        write_structs(
            b.reborrow().init_entries(len32(&self.entries)),
            &self.entries,
        );
    }
}

impl WireMessage for AddressResponse {
    const CODE: MessageCode = MessageCode::AddressResponse;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &discovery_capnp::address_response::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Proptest strategies and round-trip helpers shared by the message modules'
/// tests.
#[cfg(test)]
pub(crate) mod strategies {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use core::net::{IpAddr, SocketAddr};

    use proptest::prelude::*;

    use super::super::common::{PeerAddress, SocketAddress, MAX_ADDRESSES};
    use crate::ids::{ChannelId, NodeId, PostId, PostingId, WormId};
    use crate::limits::PROTOCOL_VERSION;

    pub(crate) use crate::messages::testutil::*;

    /// A protocol version.
    pub(crate) fn version() -> impl Strategy<Value = u16> {
        Just(PROTOCOL_VERSION)
    }

    /// Any NodeId.
    pub(crate) fn node_id() -> impl Strategy<Value = NodeId> {
        any::<[u8; 32]>().prop_map(NodeId)
    }

    /// Any PostingId.
    pub(crate) fn posting_id() -> impl Strategy<Value = PostingId> {
        any::<[u8; 32]>().prop_map(PostingId)
    }

    /// Any PostId.
    pub(crate) fn post_id() -> impl Strategy<Value = PostId> {
        any::<[u8; 32]>().prop_map(PostId)
    }

    /// Any ChannelId.
    pub(crate) fn channel_id() -> impl Strategy<Value = ChannelId> {
        any::<[u8; 16]>().prop_map(ChannelId)
    }

    /// Any WormId.
    pub(crate) fn worm_id() -> impl Strategy<Value = WormId> {
        any::<[u8; 16]>().prop_map(WormId)
    }

    /// Any IPv4 or IPv6 socket address.
    pub(crate) fn socket_address() -> impl Strategy<Value = SocketAddress> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
        ]
        .prop_map(SocketAddress)
    }

    /// Up to [`MAX_ADDRESSES`] socket addresses.
    pub(crate) fn addresses() -> impl Strategy<Value = Vec<SocketAddress>> {
        prop::collection::vec(socket_address(), 0..=MAX_ADDRESSES)
    }

    /// Any PeerAddress.
    pub(crate) fn peer_address() -> impl Strategy<Value = PeerAddress> {
        (node_id(), addresses(), any::<bool>(), any::<u64>()).prop_map(
            |(node_id, addresses, is_anchor, last_seen_ms)| PeerAddress {
                node_id,
                addresses,
                is_anchor,
                last_seen_ms,
            },
        )
    }

    /// Bytes of length `0..=max`.
    pub(crate) fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..=max)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::strategies::*;
    use super::*;
    use crate::error::{ErrorCode, WireCode};

    fn hop1_change() -> impl Strategy<Value = Hop1Change> {
        (
            node_id(),
            prop_oneof![
                Just(Hop1ChangeKind::Added),
                Just(Hop1ChangeKind::Removed),
                Just(Hop1ChangeKind::AddressChanged)
            ],
            addresses(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(node_id, kind, addresses, is_anchor, is_wide)| Hop1Change {
                    node_id,
                    kind,
                    addresses,
                    is_anchor,
                    is_wide,
                },
            )
    }

    fn hop2_change() -> impl Strategy<Value = Hop2Change> {
        (
            node_id(),
            prop_oneof![Just(Hop2ChangeKind::Added), Just(Hop2ChangeKind::Removed)],
            any::<bool>(),
        )
            .prop_map(|(node_id, kind, is_anchor)| Hop2Change {
                node_id,
                kind,
                is_anchor,
            })
    }

    fn routing_diff() -> impl Strategy<Value = RoutingDiff> {
        (
            version(),
            any::<u64>(),
            prop::collection::vec(hop1_change(), 0..4),
            prop::collection::vec(hop2_change(), 0..6),
        )
            .prop_map(|(version, seq, hop1_changes, hop2_changes)| RoutingDiff {
                version,
                seq,
                hop1_changes,
                hop2_changes,
            })
    }

    fn hop1_entry() -> impl Strategy<Value = Hop1Entry> {
        (peer_address(), any::<bool>()).prop_map(|(peer, is_wide)| Hop1Entry { peer, is_wide })
    }

    fn hop2_entry() -> impl Strategy<Value = Hop2Entry> {
        (node_id(), any::<bool>()).prop_map(|(node_id, is_anchor)| Hop2Entry { node_id, is_anchor })
    }

    fn initial_map_sync() -> impl Strategy<Value = InitialMapSync> {
        (
            version(),
            any::<u64>(),
            prop::collection::vec(hop1_entry(), 0..4),
            prop::collection::vec(hop2_entry(), 0..6),
            prop::collection::vec(node_id(), 0..8),
            (1u32..=u32::MAX).prop_flat_map(|count| (0..count, Just(count))),
        )
            .prop_map(
                |(version, seq, hop1, hop2, hop3, (chunk_index, chunk_count))| InitialMapSync {
                    version,
                    seq,
                    hop1,
                    hop2,
                    hop3,
                    chunk_index,
                    chunk_count,
                },
            )
    }

    fn bootstrap_request() -> impl Strategy<Value = BootstrapRequest> {
        (
            version(),
            any::<u16>(),
            prop::collection::vec(node_id(), 0..8),
        )
            .prop_map(|(version, want, exclude)| BootstrapRequest {
                version,
                want,
                exclude,
            })
    }

    fn bootstrap_response() -> impl Strategy<Value = BootstrapResponse> {
        (version(), prop::collection::vec(peer_address(), 0..6))
            .prop_map(|(version, peers)| BootstrapResponse { version, peers })
    }

    fn worm_request() -> impl Strategy<Value = WormRequest> {
        (
            version(),
            worm_id(),
            prop::collection::vec(node_id(), 0..=MAX_WORM_TARGETS),
            prop::collection::vec(post_id(), 0..=MAX_WORM_POST_IDS),
            0..=MAX_WORM_TTL,
            peer_address(),
            prop::collection::vec(node_id(), 0..8),
        )
            .prop_map(
                |(version, worm_id, targets, post_ids, ttl, originator, visited)| WormRequest {
                    version,
                    worm_id,
                    targets,
                    post_ids,
                    ttl,
                    originator,
                    visited,
                },
            )
    }

    fn worm_query() -> impl Strategy<Value = WormQuery> {
        (
            version(),
            worm_id(),
            prop::collection::vec(node_id(), 0..4),
            prop::collection::vec(post_id(), 0..4),
        )
            .prop_map(|(version, worm_id, targets, post_ids)| WormQuery {
                version,
                worm_id,
                targets,
                post_ids,
            })
    }

    fn worm_hit() -> impl Strategy<Value = WormHit> {
        (any::<[u8; 32]>(), peer_address(), 0..=MAX_WORM_HIT_HOPS).prop_map(
            |(target, holder, hops)| WormHit {
                target,
                holder,
                hops,
            },
        )
    }

    fn worm_response() -> impl Strategy<Value = WormResponse> {
        (
            version(),
            worm_id(),
            prop::collection::vec(worm_hit(), 0..4),
            prop::option::of(peer_address()),
        )
            .prop_map(|(version, worm_id, hits, closest)| WormResponse {
                version,
                worm_id,
                hits,
                closest,
            })
    }

    fn address_request() -> impl Strategy<Value = AddressRequest> {
        (
            version(),
            prop::collection::vec(node_id(), 0..8),
            0..=MAX_ADDRESS_DEPTH,
        )
            .prop_map(|(version, targets, depth)| AddressRequest {
                version,
                targets,
                depth,
            })
    }

    fn map_sync_request() -> impl Strategy<Value = MapSyncRequest> {
        (version(), any::<u64>())
            .prop_map(|(version, last_seq)| MapSyncRequest { version, last_seq })
    }

    fn address_entry() -> impl Strategy<Value = AddressEntry> {
        (peer_address(), any::<bool>(), prop::option::of(node_id())).prop_map(
            |(peer, found, referral)| AddressEntry {
                node_id: peer.node_id,
                peer: found.then_some(peer),
                referral,
            },
        )
    }

    fn address_response() -> impl Strategy<Value = AddressResponse> {
        (version(), prop::collection::vec(address_entry(), 0..6))
            .prop_map(|(version, entries)| AddressResponse { version, entries })
    }

    proptest! {
        #[test]
        fn hop1_change_round_trips(v in hop1_change()) { assert_round_trip(&v)?; }
        #[test]
        fn hop2_change_round_trips(v in hop2_change()) { assert_round_trip(&v)?; }
        #[test]
        fn routing_diff_round_trips(v in routing_diff()) { assert_round_trip(&v)?; }
        #[test]
        fn hop1_entry_round_trips(v in hop1_entry()) { assert_round_trip(&v)?; }
        #[test]
        fn hop2_entry_round_trips(v in hop2_entry()) { assert_round_trip(&v)?; }
        #[test]
        fn initial_map_sync_round_trips(v in initial_map_sync()) { assert_round_trip(&v)?; }
        #[test]
        fn map_sync_request_round_trips(v in map_sync_request()) { assert_round_trip(&v)?; }
        #[test]
        fn bootstrap_request_round_trips(v in bootstrap_request()) {
            assert_round_trip(&v)?;
            prop_assert!(v.effective_want() <= BOOTSTRAP_MAX_PEERS);
        }
        #[test]
        fn bootstrap_response_round_trips(v in bootstrap_response()) { assert_round_trip(&v)?; }
        #[test]
        fn worm_request_round_trips(v in worm_request()) { assert_round_trip(&v)?; }
        #[test]
        fn worm_query_round_trips(v in worm_query()) { assert_round_trip(&v)?; }
        #[test]
        fn worm_hit_round_trips(v in worm_hit()) { assert_round_trip(&v)?; }
        #[test]
        fn worm_response_round_trips(v in worm_response()) { assert_round_trip(&v)?; }
        #[test]
        fn address_request_round_trips(v in address_request()) { assert_round_trip(&v)?; }
        #[test]
        fn address_entry_round_trips(v in address_entry()) { assert_round_trip(&v)?; }
        #[test]
        fn address_response_round_trips(v in address_response()) { assert_round_trip(&v)?; }
    }

    fn peer(n: u8) -> PeerAddress {
        PeerAddress {
            node_id: NodeId([n; 32]),
            addresses: Vec::new(),
            is_anchor: false,
            last_seen_ms: 0,
        }
    }

    fn worm(ttl: u8) -> WormRequest {
        WormRequest {
            version: 2,
            worm_id: WormId([1; 16]),
            targets: vec![NodeId([2; 32])],
            post_ids: Vec::new(),
            ttl,
            originator: peer(3),
            visited: Vec::new(),
        }
    }

    #[test]
    fn hop2_address_changed_is_invalid() {
        let mut b = capnp::message::Builder::new_default();
        let mut c = b.init_root::<discovery_capnp::hop2_change::Builder<'_>>();
        c.set_node_id(&[1; 32]);
        c.set_kind(discovery_capnp::ChangeKind::AddressChanged);
        let e = codec::reread::<Hop2Change>(&b).unwrap_err();
        assert!(
            matches!(e, DecodeError::Invalid { field: "kind", .. }),
            "{e:?}"
        );
        assert_eq!(e.error_code(), ErrorCode::Malformed);
    }

    #[test]
    fn routing_diff_limits() {
        let change = Hop2Change {
            node_id: NodeId([1; 32]),
            kind: Hop2ChangeKind::Added,
            is_anchor: false,
        };
        let ok = RoutingDiff {
            version: 2,
            seq: 1,
            hop1_changes: Vec::new(),
            hop2_changes: vec![change; MAX_HOP2_CHANGES],
        };
        assert_eq!(wire_round_trip(&ok).unwrap(), ok);
        let mut over = ok;
        over.hop2_changes.push(change);
        let e = wire_round_trip(&over).unwrap_err();
        assert_eq!(
            e,
            DecodeError::TooMany {
                field: "hop2Changes",
                max: MAX_HOP2_CHANGES,
                got: MAX_HOP2_CHANGES + 1
            }
        );
        assert_eq!(e.error_code(), ErrorCode::TooLarge);
    }

    #[test]
    fn worm_limits() {
        assert_eq!(
            wire_round_trip(&worm(MAX_WORM_TTL)).unwrap(),
            worm(MAX_WORM_TTL)
        );
        let e = wire_round_trip(&worm(MAX_WORM_TTL + 1)).unwrap_err();
        assert!(
            matches!(e, DecodeError::Invalid { field: "ttl", .. }),
            "{e:?}"
        );
        assert_eq!(e.error_code(), ErrorCode::Malformed);

        let mut w = worm(1);
        w.targets = vec![NodeId([9; 32]); MAX_WORM_TARGETS + 1];
        let e = wire_round_trip(&w).unwrap_err();
        assert_eq!(
            e,
            DecodeError::TooMany {
                field: "targets",
                max: 16,
                got: 17
            }
        );
        assert_eq!(e.error_code(), ErrorCode::TooLarge);

        let mut w = worm(1);
        w.visited = vec![NodeId([9; 32]); MAX_WORM_VISITED + 1];
        assert!(matches!(
            wire_round_trip(&w),
            Err(DecodeError::TooMany {
                field: "visited",
                ..
            })
        ));

        // A 15-byte worm id.
        let mut b = codec::build(&worm(1));
        b.get_root::<discovery_capnp::worm_request::Builder<'_>>()
            .unwrap()
            .set_worm_id(&[0; 15]);
        let e = codec::reread::<WormRequest>(&b).unwrap_err();
        assert_eq!(
            e,
            DecodeError::BadLength {
                field: "wormId",
                expected: 16,
                got: 15
            }
        );
        assert_eq!(e.error_code(), ErrorCode::Malformed);

        // Missing originator.
        let mut b = capnp::message::Builder::new_default();
        let mut root = b.init_root::<discovery_capnp::worm_request::Builder<'_>>();
        root.set_version(2);
        root.set_worm_id(&[1; 16]);
        assert_eq!(
            codec::reread::<WormRequest>(&b).unwrap_err(),
            DecodeError::Missing("originator")
        );

        let hit = WormHit {
            target: [1; 32],
            holder: peer(2),
            hops: MAX_WORM_HIT_HOPS + 1,
        };
        assert!(matches!(
            wire_round_trip(&hit),
            Err(DecodeError::Invalid { field: "hops", .. })
        ));
        let resp = WormResponse {
            version: 2,
            worm_id: WormId([1; 16]),
            hits: vec![WormHit { hops: 1, ..hit }; MAX_WORM_HITS + 1],
            closest: None,
        };
        assert!(matches!(
            wire_round_trip(&resp),
            Err(DecodeError::TooMany {
                field: "hits",
                max: 32,
                ..
            })
        ));
    }

    #[test]
    fn worm_response_closest_is_optional() {
        let with = WormResponse {
            version: 2,
            worm_id: WormId([1; 16]),
            hits: Vec::new(),
            closest: Some(peer(7)),
        };
        assert_eq!(wire_round_trip(&with).unwrap(), with);

        // A sender from before `closest` writes no pointer: None.
        let mut b = capnp::message::Builder::new_default();
        let mut root = b.init_root::<discovery_capnp::worm_response::Builder<'_>>();
        root.set_version(2);
        root.set_worm_id(&[1; 16]);
        let back = codec::reread::<WormResponse>(&b).unwrap();
        assert_eq!(back.closest, None);
        assert!(back.hits.is_empty());

        // A present `closest` is validated like any PeerAddress.
        let mut b = codec::build(&with);
        b.get_root::<discovery_capnp::worm_response::Builder<'_>>()
            .unwrap()
            .get_closest()
            .unwrap()
            .set_node_id(&[7; 31]);
        let e = codec::reread::<WormResponse>(&b).unwrap_err();
        assert!(
            matches!(
                e,
                DecodeError::BadLength {
                    field: "nodeId",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.error_code(), ErrorCode::Malformed);
    }

    #[test]
    fn map_sync_request_fits_its_cap() {
        let m = MapSyncRequest {
            version: 2,
            last_seq: u64::MAX,
        };
        assert_eq!(wire_round_trip(&m).unwrap(), m);
        let bytes = capnp::serialize::write_message_to_words(&codec::build(&m));
        assert!(bytes.len() <= crate::codes::MessageCode::MapSyncRequest.max_frame_bytes());
        assert_eq!(
            crate::codes::MessageCode::MapSyncRequest.kind(),
            crate::codes::Kind::Push
        );
    }

    #[test]
    fn initial_map_sync_chunks() {
        let base = InitialMapSync {
            version: 2,
            seq: 0,
            hop1: Vec::new(),
            hop2: Vec::new(),
            hop3: vec![NodeId([4; 32])],
            chunk_index: 0,
            chunk_count: 1,
        };
        assert_eq!(wire_round_trip(&base).unwrap(), base);
        let zero = InitialMapSync {
            chunk_count: 0,
            ..base.clone()
        };
        assert!(matches!(
            wire_round_trip(&zero),
            Err(DecodeError::Invalid {
                field: "chunkCount",
                ..
            })
        ));
        let past = InitialMapSync {
            chunk_index: 1,
            ..base.clone()
        };
        assert!(matches!(
            wire_round_trip(&past),
            Err(DecodeError::Invalid {
                field: "chunkIndex",
                ..
            })
        ));
        // A hop-1 entry without its peer.
        let mut b = codec::build(&base);
        let root = b
            .get_root::<discovery_capnp::initial_map_sync::Builder<'_>>()
            .unwrap();
        root.init_hop1(1).get(0).set_is_wide(true);
        assert_eq!(
            codec::reread::<InitialMapSync>(&b).unwrap_err(),
            DecodeError::Missing("peer")
        );
    }

    #[test]
    fn bootstrap_limits() {
        let req = BootstrapRequest {
            version: 2,
            want: 5000,
            exclude: vec![NodeId([1; 32]); MAX_BOOTSTRAP_EXCLUDE],
        };
        assert_eq!(req.effective_want(), BOOTSTRAP_MAX_PEERS);
        assert_eq!(
            BootstrapRequest {
                want: 7,
                ..req.clone()
            }
            .effective_want(),
            7
        );
        assert_eq!(
            BootstrapRequest {
                want: 0,
                ..req.clone()
            }
            .effective_want(),
            BOOTSTRAP_MAX_PEERS,
            "0 asks for the default"
        );
        assert_eq!(wire_round_trip(&req).unwrap(), req);
        // The largest valid request fits its code's frame cap.
        let bytes = capnp::serialize::write_message_to_words(&codec::build(&req));
        assert!(
            bytes.len() <= crate::codes::MessageCode::BootstrapRequest.max_frame_bytes(),
            "{} bytes",
            bytes.len()
        );
        let mut over = req;
        over.exclude.push(NodeId([2; 32]));
        assert!(matches!(
            wire_round_trip(&over),
            Err(DecodeError::TooMany {
                field: "exclude",
                max: MAX_BOOTSTRAP_EXCLUDE,
                ..
            })
        ));
        let resp = BootstrapResponse {
            version: 2,
            peers: vec![peer(1); BOOTSTRAP_MAX_PEERS + 1],
        };
        assert!(matches!(
            wire_round_trip(&resp),
            Err(DecodeError::TooMany {
                field: "peers",
                max: 200,
                ..
            })
        ));
    }

    #[test]
    fn address_request_depth() {
        let req = |depth| AddressRequest {
            version: 2,
            targets: vec![NodeId([1; 32])],
            depth,
        };
        for d in 0..=MAX_ADDRESS_DEPTH {
            assert_eq!(wire_round_trip(&req(d)).unwrap(), req(d));
        }
        let e = wire_round_trip(&req(MAX_ADDRESS_DEPTH + 1)).unwrap_err();
        assert!(
            matches!(e, DecodeError::Invalid { field: "depth", .. }),
            "{e:?}"
        );
        assert_eq!(e.error_code(), ErrorCode::Malformed);
        assert!(wire_round_trip(&req(u8::MAX)).is_err());

        // A sender from before `depth` leaves it unset: 0.
        let mut b = capnp::message::Builder::new_default();
        let mut root = b.init_root::<discovery_capnp::address_request::Builder<'_>>();
        root.set_version(2);
        root.init_targets(1).set(0, &[1; 32]);
        assert_eq!(codec::reread::<AddressRequest>(&b).unwrap(), req(0));
    }

    #[test]
    fn address_limits_and_rules() {
        let req = AddressRequest {
            version: 2,
            targets: vec![NodeId([1; 32]); MAX_ADDRESS_TARGETS + 1],
            depth: 0,
        };
        assert!(matches!(
            wire_round_trip(&req),
            Err(DecodeError::TooMany {
                field: "targets",
                max: 64,
                ..
            })
        ));
        let mismatched = AddressEntry {
            node_id: NodeId([1; 32]),
            peer: Some(peer(2)),
            referral: None,
        };
        assert!(matches!(
            wire_round_trip(&mismatched),
            Err(DecodeError::Invalid { field: "peer", .. })
        ));
        let mut b = codec::build(&AddressEntry {
            node_id: NodeId([1; 32]),
            peer: None,
            referral: None,
        });
        b.get_root::<discovery_capnp::address_entry::Builder<'_>>()
            .unwrap()
            .set_found(true);
        assert_eq!(
            codec::reread::<AddressEntry>(&b).unwrap_err(),
            DecodeError::Missing("peer")
        );
        let mut b = codec::build(&AddressEntry {
            node_id: NodeId([1; 32]),
            peer: None,
            referral: None,
        });
        b.get_root::<discovery_capnp::address_entry::Builder<'_>>()
            .unwrap()
            .set_referral(&[1; 31]);
        assert!(matches!(
            codec::reread::<AddressEntry>(&b),
            Err(DecodeError::BadLength {
                field: "referral",
                ..
            })
        ));
    }

    #[test]
    fn version_out_of_range_is_unsupported() {
        let mut w = worm(1);
        w.version = 3;
        let e = read_as_message(&w).unwrap_err();
        assert_eq!(
            e,
            DecodeError::UnsupportedVersion {
                got: 3,
                min: 2,
                max: 2
            }
        );
        assert_eq!(e.error_code(), ErrorCode::UnsupportedVersion);
        let d = RoutingDiff {
            version: 1,
            seq: 0,
            hop1_changes: Vec::new(),
            hop2_changes: Vec::new(),
        };
        assert!(matches!(
            read_as_message(&d),
            Err(DecodeError::UnsupportedVersion { got: 1, .. })
        ));
        assert_eq!(read_as_message(&worm(1)).unwrap(), worm(1));
    }

    /// discovery-protocol-v2 §7 claims "200 peers in ~15 KB". One
    /// BootstrapResponse of [`BOOTSTRAP_MAX_PEERS`] peers, framed as sent:
    /// 22.0 KB with one IPv4 address each (110 B a peer: the 32-byte id,
    /// Cap'n Proto's struct and list words, the 4-byte IP padded to 8),
    /// 28.6 KB with an IPv6 address too (docs/DESIGN-NUMBERS.md). The
    /// bounds fail if the encoding grows.
    #[test]
    fn a_full_bootstrap_response_is_22_kb_over_ipv4() {
        use super::super::any::Message;
        use core::net::{IpAddr, SocketAddr};
        let response = |v6: bool| {
            let peers = (0..BOOTSTRAP_MAX_PEERS)
                .map(|i| {
                    let n = u8::try_from(i % 251).unwrap();
                    let mut addresses = vec![SocketAddress(SocketAddr::new(
                        IpAddr::from([203, 0, 113, n]),
                        4433,
                    ))];
                    if v6 {
                        addresses.push(SocketAddress(SocketAddr::new(
                            IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n)]),
                            4433,
                        )));
                    }
                    PeerAddress {
                        node_id: NodeId([n; 32]),
                        addresses,
                        is_anchor: i % 20 == 0,
                        last_seen_ms: 1_800_000_000_000,
                    }
                })
                .collect();
            Message::from(BootstrapResponse {
                version: crate::limits::PROTOCOL_VERSION,
                peers,
            })
            .to_frame()
            .unwrap()
            .len()
        };
        let (v4, both) = (response(false), response(true));
        println!(
            "BootstrapResponse, {BOOTSTRAP_MAX_PEERS} peers: {v4} B (IPv4), {both} B (IPv4 + IPv6)"
        );
        assert!((18_000..=24_000).contains(&v4), "{v4}");
        assert!((v4..=30_000).contains(&both), "{both}");
    }
}
