# distsoc wire schema — common types and protocol constants.
#
# This file is part of the normative distsoc wire specification. Evolution rules
# (see schema/README.md): never renumber, retype or remove a field, enumerant or
# union arm; new fields get the next ordinal; the file id below never changes.
#
# Conventions used in every schema file:
#   * Ids are `Data` of a fixed length (NodeId, PostingId, PostId: 32 bytes;
#     ChannelId, WormId: 16 bytes). A wrong length is rejected as `malformed`.
#   * Times are `UInt64` milliseconds since the Unix epoch (UTC), "…Ms".
#   * Durations are milliseconds ("…Ms") unless the name says otherwise.
#   * Sizes are bytes ("…Bytes") unless the name says otherwise.
#   * Every top-level message (the root struct of a frame) has
#     `version @0 :UInt16`, the protocol version the sender speaks for this
#     message; a receiver rejects a version above its own maximum with the error
#     `unsupportedVersion` and a version below its minimum the same way.
#   * Signed or hashed values travel as *canonical bytes*: a `Data` field holding
#     the single segment of the Cap'n Proto canonical encoding of the named
#     struct, with no segment table (schema/README.md, "Canonical form").

@0x969a8fb3d15a9b0b;

using A = import "annotations.capnp";

const protocolVersion :UInt16 = 2;
# The protocol version this schema describes. Sent in every message's `version`
# field; matches the ALPN `distsoc/2`.

const minProtocolVersion :UInt16 = 2;
# The lowest protocol version a current implementation accepts.

const alpn :Text = "distsoc/2";
# The one QUIC ALPN protocol id of distsoc. Every message type is multiplexed on
# connections negotiated with it.

const maxBlobBytes :UInt32 = 262144;
# Largest content blob (an attachment, or a post's canonical bytes): 256 KiB.

const maxMailboxPayloadBytes :UInt32 = 5242880;
# Largest mailbox / DM-channel payload accepted by Enqueue: 5 MiB.

const maxRecentPostsBytes :UInt32 = 262144;
# Largest canonical `AuthorRecentPosts`: 256 KiB (about 4,600 entries).

const nestingLimit :UInt32 = 64;
# Deepest pointer nesting a receiver follows; deeper messages are `malformed`.

const maxSegments :UInt32 = 512;
# Most segments a framed message may have; more is `malformed`.

const bootstrapMaxPeers :UInt16 = 200;
# Most peers a BootstrapResponse returns.

const maxFetchWaitMs :UInt32 = 60000;
# Longest FetchWait long-poll an anchor holds, in milliseconds.

const defaultMailboxTtlMs :UInt64 = 604800000;
# Default time a mailbox message is kept before eviction: 7 days, in ms.

struct SocketAddress {
  # A transport address at which a node accepts QUIC connections (UDP).

  ip @0 :Data;
  # The IP address in network byte order: 4 bytes (IPv4) or 16 bytes (IPv6).
  # Any other length is `malformed`.

  port @1 :UInt16;
  # The UDP port. 0 is invalid in a listen address.
}

struct PeerAddress {
  # What a node knows about how to reach another node. Used by
  # BootstrapResponse, AddressResponse and discovery messages.

  nodeId @0 :Data $A.exactBytes(32);
  # The peer's NodeId: its 32-byte ed25519 network public key.

  addresses @1 :List(SocketAddress);
  # Addresses at which the peer was reachable, most recently seen first. At
  # most 8 entries; receivers ignore the rest.

  isAnchor @2 :Bool;
  # True if the peer declared the `anchor` role in its Hello.

  lastSeenMs @3 :UInt64;
  # When the reporter last had a working connection to the peer (ms since
  # epoch); 0 if unknown.
}

enum Role {
  # A role a node plays, declared in Hello.

  node @0;
  # A user node (desktop or phone class).

  anchor @1;
  # An always-on, high-capacity node with a stable address: mailbox, bootstrap,
  # address cache.
}

enum VisibilityHint {
  # Whether a post's body can be read without a key. Carried where the full
  # PostVisibility is not (recent-post lists, notifications).

  public @0;
  # The body is plaintext.

  encrypted @1;
  # The body is sealed to recipients (envelope encryption).
}
