# distsoc wire schema — layer 1, peer discovery: the 3-hop map gossip, worm
# lookups, address resolution and bootstrap (discovery-protocol-v2 §2, §7).

@0x8b722aad862a2300;

using A = import "annotations.capnp";

using Common = import "common.capnp";

enum ChangeKind {
  # What happened to a map entry.

  added @0;
  # The node became known (connected, or reported by a peer).

  removed @1;
  # The node is no longer known (disconnected, or no peer reports it).

  addressChanged @2;
  # Hop-1 only: the node's address changed. Not valid in hop-2 changes.
}

struct Hop1Change {
  # A change among the sender's direct (hop-1) connections.

  nodeId @0 :Data $A.exactBytes(32);
  # The 32-byte NodeId concerned.

  kind @1 :ChangeKind;
  # What changed.

  addresses @2 :List(Common.SocketAddress);
  # For `added` and `addressChanged`: the node's current addresses; receivers
  # keep the first 8 and ignore the rest. Empty for `removed` (ignored if not).

  isAnchor @3 :Bool;
  # The node declared the anchor role.

  isWide @4 :Bool;
  # The node is one of the sender's wide (diversity) peers.
}

struct Hop2Change {
  # A change in what the sender's peers report (the sender's hop-2 view).

  nodeId @0 :Data $A.exactBytes(32);
  # The 32-byte NodeId concerned.

  kind @1 :ChangeKind;
  # `added` or `removed`; `addressChanged` is `malformed` here.

  isAnchor @2 :Bool;
  # The node declared the anchor role.
}

struct RoutingDiff {
  # Code 0x01, push. Sent every 2 minutes to each connected peer: the changes in
  # the sender's own view since the previous diff to that peer. Never a
  # forwarded copy of a received diff (each hop re-derives its changes).

  version @0 :UInt16;
  # Protocol version of this message.

  seq @1 :UInt64;
  # Per-(sender, receiver) counter, +1 per diff. A gap tells the receiver it
  # missed a diff and should request an InitialMapSync.

  hop1Changes @2 :List(Hop1Change) $A.maxItems(1024);
  # Changes among the sender's direct connections. At most 1,024.

  hop2Changes @3 :List(Hop2Change) $A.maxItems(16384);
  # Changes in the sender's hop-2 view. At most 16,384.
}

struct Hop1Entry {
  # A direct connection of the sender, in a full map.

  peer @0 :Common.PeerAddress;
  # The peer, with addresses.

  isWide @1 :Bool;
  # The peer is one of the sender's wide peers.
}

struct Hop2Entry {
  # A node the sender's peers report, in a full map.

  nodeId @0 :Data $A.exactBytes(32);
  # The 32-byte NodeId.

  isAnchor @1 :Bool;
  # The node declared the anchor role.
}

struct InitialMapSync {
  # Code 0x02, push. The sender's full map, sent once on a new connection (in
  # chunks of at most 16 MiB); later changes come as RoutingDiff.

  version @0 :UInt16;
  # Protocol version of this message.

  seq @1 :UInt64;
  # The RoutingDiff seq this map corresponds to; diffs continue from seq+1.

  hop1 @2 :List(Hop1Entry) $A.maxItems(1024);
  # The sender's direct connections. At most 1,024.

  hop2 @3 :List(Hop2Entry) $A.maxItems(65536);
  # The sender's hop-2 view. At most 65,536.

  hop3 @4 :List(Data) $A.maxItems(400000);
  # Always empty: a sender MUST send it empty and a receiver ignores it
  # (schema/README.md §13.4). The sender's hop-3 nodes would be the
  # receiver's hop 4, outside a 3-hop map, and would cost ~11 MB per
  # connection; the receiver builds its hop 3 from its peers' hop-2
  # reports. Kept for compatibility (NodeIds of 32 bytes, at most 400,000
  # per chunk: a longer list is still `tooLarge`).

  chunkIndex @5 :UInt32;
  # 0-based index of this chunk.

  chunkCount @6 :UInt32;
  # Number of chunks in this map (>= 1).
}

struct MapSyncRequest {
  # Code 0x06, push. "I lost track of your diffs; send me a fresh
  # InitialMapSync." Sent by a node that saw a gap in the `seq` of the
  # RoutingDiffs it receives from this peer (schema/README.md §13.3). The
  # receiver answers, on a stream of its own, with a new InitialMapSync and
  # continues its diffs from that map's `seq`; it serves at most one
  # MapSyncRequest per peer per 60 s and ignores the others.

  version @0 :UInt16;
  # Protocol version of this message.

  lastSeq @1 :UInt64;
  # The `seq` of the last RoutingDiff (or InitialMapSync) the requester
  # applied from this peer; 0 if none. For diagnostics only: the answer is
  # a full map whatever its value.
}

struct BootstrapRequest {
  # Code 0x03, request, served by nodes with the `bootstrap/1` capability
  # (anchors). "I'm new, give me diverse peers" (discovery-protocol-v2 §7).

  version @0 :UInt16;
  # Protocol version of this message.

  want @1 :UInt16;
  # How many peers to return; at most 200 (larger values are clamped); 0 means
  # the responder's default (200).

  exclude @2 :List(Data) $A.maxItems(96);
  # NodeIds (32 bytes) the requester already knows; at most 96 (what fits the
  # 4 KiB frame cap of this message).
}

struct BootstrapResponse {
  # Code 0x04, response to BootstrapRequest.

  version @0 :UInt16;
  # Protocol version of this message.

  peers @1 :List(Common.PeerAddress) $A.maxItems(200);
  # Up to `want` recently seen peers with addresses, chosen for diversity
  # (different address prefixes, some anchors). At most 200.
}

struct WormRequest {
  # Code 0x10, request, capability `worm/1`. A forwarded search for nodes or
  # posts not in the local map (discovery-protocol-v2 §2.3). The receiver
  # checks its map, fans out WormQuery to its peers, answers with WormResponse
  # and forwards the remaining targets with ttl-1.

  version @0 :UInt16;
  # Protocol version of this message.

  wormId @1 :Data $A.exactBytes(16);
  # 16 random bytes chosen by the originator; duplicates are dropped.

  targets @2 :List(Data) $A.maxItems(16);
  # NodeIds (32 bytes) sought. At most 16.

  postIds @3 :List(Data) $A.maxItems(16);
  # PostIds (32 bytes) sought (content lookup). At most 16.

  ttl @4 :UInt8;
  # Remaining forwarding hops; at most 5. 0 means "answer, do not forward".

  originator @5 :Common.PeerAddress;
  # The node that started the worm, as it claims. Informational, and the key
  # of the per-origin rate limit (schema/README.md §13.5); answers never go
  # to it directly, they travel back along the chain.

  visited @6 :List(Data) $A.maxItems(64);
  # NodeIds already visited by this worm; at most 64.
}

struct WormQuery {
  # Code 0x11, request, capability `worm/1`. A one-hop fan-out check: "do you
  # know any of these?" Answered on the same stream by WormResponse; never
  # forwarded.

  version @0 :UInt16;
  # Protocol version of this message.

  wormId @1 :Data $A.exactBytes(16);
  # The 16-byte id of the worm this query belongs to.

  targets @2 :List(Data) $A.maxItems(16);
  # NodeIds (32 bytes) sought. At most 16.

  postIds @3 :List(Data) $A.maxItems(16);
  # PostIds (32 bytes) sought. At most 16.
}

struct WormHit {
  # One found target.

  target @0 :Data $A.exactBytes(32);
  # The 32-byte NodeId or PostId found.

  holder @1 :Common.PeerAddress;
  # For a NodeId: the target itself with its addresses. For a PostId: a node
  # that holds the post.

  hops @2 :UInt8;
  # Distance of the hit from the responder in its map: 0 when the responder
  # is the target or holds the post itself, else 1..=3.
}

struct WormResponse {
  # Code 0x12, response to WormRequest / WormQuery on their stream. Answers
  # travel back along the worm's chain, each relay answering the peer that
  # asked it (schema/README.md §13.5); nobody dials the originator.

  version @0 :UInt16;
  # Protocol version of this message.

  wormId @1 :Data $A.exactBytes(16);
  # The 16-byte id of the worm answered.

  hits @2 :List(WormHit) $A.maxItems(32);
  # What was found; empty if nothing. At most 32.

  closest @3 :Common.PeerAddress;
  # Optional. When `hits` is empty: the node closest to the first target by
  # XOR distance of NodeIds (schema/README.md §13.5) among the nodes with
  # addresses known to the responder and to the relays after it on the
  # chain, with those addresses; each relay replaces it with a node of its
  # own map that is strictly closer. Absent when there are hits, when no
  # such node is known, and in answers of senders from before this field.
  # Requesters use it as a Kademlia FIND_NODE answer (k = 1), e.g. to fill
  # wide slots (§13.6).
}

struct AddressRequest {
  # Code 0x20, request. "Has this node checked in recently, at what address?"
  # Served by every node from its map; anchors also answer from their
  # check-in cache (capability `address-cache/1`), which holds only
  # addresses the anchor verified by dialling back (schema/README.md §12).

  version @0 :UInt16;
  # Protocol version of this message.

  targets @1 :List(Data) $A.maxItems(64);
  # NodeIds (32 bytes) to resolve. At most 64.

  depth @2 :UInt8;
  # How many referral steps the responder may take on the requester's
  # behalf (schema/README.md §13.7). 0 (the default, and what senders from
  # before this field mean): answer from the responder's own map, giving a
  # `referral` for nodes it knows only through a peer. 1 or 2: for such a
  # node the responder asks that peer itself, with `depth - 1`, and relays
  # its answer. At most 2; a larger value is `malformed`. Only the first 8
  # targets are resolved recursively; the others are answered as if `depth`
  # were 0.
}

struct AddressEntry {
  # The answer for one target.

  nodeId @0 :Data $A.exactBytes(32);
  # The 32-byte NodeId asked for.

  found @1 :Bool;
  # True if `peer` holds the node's addresses. When false, `peer` is ignored;
  # `referral` may still be set.

  peer @2 :Common.PeerAddress;
  # The node's addresses and last-seen time, when found. Its nodeId must equal
  # this entry's nodeId (`malformed` otherwise).

  referral @3 :Data $A.exactBytes(32);
  # When the responder only knows the node at hop 2: the 32-byte NodeId of the
  # peer that reported it (ask that peer). Empty otherwise.
}

struct AddressResponse {
  # Code 0x21, response to AddressRequest.

  version @0 :UInt16;
  # Protocol version of this message.

  entries @1 :List(AddressEntry) $A.maxItems(64);
  # One entry per requested target, in request order. At most 64.
}
