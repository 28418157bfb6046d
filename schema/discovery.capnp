# distsoc wire schema — layer 1, peer discovery: the 3-hop map gossip, worm
# lookups, address resolution and bootstrap. The rules are schema/README.md
# §13 ("The mesh"); discovery-protocol-v2 §2 and §7 are the background.

@0x8b722aad862a2300;

using A = import "annotations.capnp";

using Common = import "common.capnp";

enum ChangeKind {
  # What happened to a map entry.

  added @0;
  # The node entered the sender's view (connected, or reported by a peer).
  # For an entry the receiver already has: replace it.

  removed @1;
  # The node left the sender's view (disconnected, or no peer reports it).

  addressChanged @2;
  # Hop-1 only: the node's addresses, isAnchor or isWide changed; the change
  # carries the full current entry, which replaces the receiver's. Not valid
  # in hop-2 changes (`malformed`).
}

struct Hop1Change {
  # A change among the sender's direct (hop-1) connections.

  nodeId @0 :Data $A.exactBytes(32);
  # The 32-byte NodeId concerned.

  kind @1 :ChangeKind;
  # What changed.

  addresses @2 :List(Common.SocketAddress);
  # For `added` and `addressChanged`: the addresses the node advertised in
  # its Hello (never an address it was merely seen at; schema/README.md
  # §13.1), possibly empty; receivers keep the first 8 and ignore the rest.
  # Empty for `removed` (ignored if not).

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
  # Code 0x01, push, capability `mesh/1`. Sent every 120 s to each peer that
  # has something to report (no empty diffs): the net changes of the
  # sender's own view (its hop 1 and hop 2) since the view it last reported
  # to that peer. Never a forwarded copy of a received diff: each node
  # re-derives its own changes (schema/README.md §13.2). Senders put at
  # most 1,024 hop-1 and 4,096 hop-2 changes in one diff and split larger
  # sets over consecutive seqs.

  version @0 :UInt16;
  # Protocol version of this message.

  seq @1 :UInt64;
  # Per-(sender, receiver) counter: the InitialMapSync of a connection is 0,
  # its diffs 1, 2, 3, ... A gap that does not close within 10 s makes the
  # receiver drop the sender's report and send MapSyncRequest
  # (schema/README.md §13.3); a seq already applied is ignored.

  hop1Changes @2 :List(Hop1Change) $A.maxItems(1024);
  # Changes among the sender's direct connections. At most 1,024.

  hop2Changes @3 :List(Hop2Change) $A.maxItems(16384);
  # Changes in the sender's hop-2 view. At most 16,384 accepted (senders
  # send at most 4,096).
}

struct Hop1Entry {
  # A direct connection of the sender, in a full map.

  peer @0 :Common.PeerAddress;
  # The peer, with the addresses it advertised in its Hello (possibly none;
  # schema/README.md §13.1).

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
  # Code 0x02, push, capability `mesh/1`. The sender's view (its hop 1 and
  # hop 2), sent by each side on every new connection and in answer to a
  # MapSyncRequest; later changes come as RoutingDiff. Sent in at most 16
  # chunks (chunk 0 carries all of hop 1, each chunk at most 4,096 hop-2
  # entries); the receiver replaces the sender's report only when all
  # chunks have arrived (schema/README.md §13.4).

  version @0 :UInt16;
  # Protocol version of this message.

  seq @1 :UInt64;
  # The RoutingDiff seq this map corresponds to: 0 on a new connection, else
  # the seq of the last diff sent to this receiver. Diffs continue from
  # seq+1. The same in every chunk of one map.

  hop1 @2 :List(Hop1Entry) $A.maxItems(1024);
  # The sender's direct connections (its peers). At most 1,024; only in
  # chunk 0 (`malformed` in another chunk).

  hop2 @3 :List(Hop2Entry) $A.maxItems(65536);
  # The sender's hop-2 view. At most 65,536 accepted per chunk; senders put
  # at most 4,096 in a chunk, and one map holds at most 65,536 in total
  # (`tooLarge` above).

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
  # Number of chunks in this map: at least 1 (`malformed` if 0), at most 16
  # (`tooLarge` above). The same in every chunk of one map.
}

struct MapSyncRequest {
  # Code 0x06, push, capability `mesh/1`. "I lost track of your diffs; send
  # me a fresh InitialMapSync." Sent by a node that saw a gap in the `seq`
  # of the RoutingDiffs it receives from this peer (schema/README.md
  # §13.3). The receiver answers, on streams of its own, with a new
  # InitialMapSync and continues its diffs from that map's `seq` + 1; it
  # serves at most one MapSyncRequest per peer per 60 s and ignores the
  # others (`rateLimited` on a bidirectional stream).

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
  # Code 0x10, request, capability `worm/1`. A search for nodes or posts not
  # in the originator's map (schema/README.md §13.5). The receiver checks
  # its map and fans out WormQuery to its peers; if nothing is found and
  # ttl > 0 it forwards the worm with ttl-1 to the peer through which the
  # known node XOR-closest to the first target is reachable, and answers
  # with that peer's answer. Answers travel back along the chain.

  version @0 :UInt16;
  # Protocol version of this message.

  wormId @1 :Data $A.exactBytes(16);
  # 16 random bytes chosen by the originator. A WormRequest whose wormId the
  # receiver saw in another WormRequest within 60 s is answered with an
  # empty WormResponse.

  targets @2 :List(Data) $A.maxItems(16);
  # NodeIds (32 bytes) sought. At most 16.

  postIds @3 :List(Data) $A.maxItems(16);
  # PostIds (32 bytes) sought (content lookup). At most 16.

  ttl @4 :UInt8;
  # Remaining forwarding hops; at most 5 (`malformed` above). 0 means
  # "check and fan out, never forward". A relay forwards with exactly ttl-1
  # and waits at most ttl x 1.5 s for the answer.

  originator @5 :Common.PeerAddress;
  # The node that started the worm, as it claims. Informational, and the key
  # of the per-origin rate limit (schema/README.md §13.5); answers never go
  # to it directly, they travel back along the chain.

  visited @6 :List(Data) $A.maxItems(64);
  # NodeIds of the relays this worm passed, the originator first; each
  # relay appends itself when it forwards. Neither fanned out to nor
  # forwarded to; a receiver that finds itself here answers an empty
  # WormResponse. At most 64.
}

struct WormQuery {
  # Code 0x11, request, capability `worm/1`. A one-hop fan-out check: "do you
  # know any of these?" Answered on the same stream by WormResponse from the
  # responder's own map (hop-2/3 targets resolved within 400 ms; the asker
  # waits 500 ms); never forwarded (schema/README.md §13.5).

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
  # For a NodeId: the target itself with its addresses (at least one; a
  # node known without addresses is not a hit). For a PostId: a node that
  # holds the post.

  hops @2 :UInt8;
  # Distance of the hit from the node that found it, in that node's map: 0
  # when it is the target or holds the post itself, else 1..=3 (`malformed`
  # above). Relays pass hits on unchanged.
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
  # addresses known to the responder, the peers it fanned out to and the
  # relays after it on the chain (never the worm's originator), with those
  # addresses; each relay replaces it with a node it knows that is strictly
  # closer. Absent when there are hits, when no such node is known, and in
  # answers of senders from before this field. Requesters use it as a
  # Kademlia FIND_NODE answer (k = 1), e.g. to fill wide slots (§13.6).
}

struct AddressRequest {
  # Code 0x20, request. "At what address can these nodes be reached?"
  # Served by every node with `mesh/1` from its map (schema/README.md
  # §13.7); anchors also answer from their check-in cache (capability
  # `address-cache/1`), which holds only addresses the anchor verified by
  # dialling back (schema/README.md §12).

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
  # When the responder knows the node only at hop 2 or 3 and did not
  # resolve it itself (depth 0, or beyond the first 8 targets, or its own
  # question failed): the 32-byte NodeId of a peer that reports it (ask that
  # peer). Empty otherwise.
}

struct AddressResponse {
  # Code 0x21, response to AddressRequest.

  version @0 :UInt16;
  # Protocol version of this message.

  entries @1 :List(AddressEntry) $A.maxItems(64);
  # One entry per requested target, in request order. At most 64.
}
