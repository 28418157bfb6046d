# distsoc wire schema — connection setup and generic replies.
#
# Every QUIC stream carries exactly one request frame and at most one reply
# frame. A frame is a 1-byte message code followed by one Cap'n Proto message in
# standard stream framing (schema/README.md, "Framing"). This file defines the
# message-code table, the Hello exchange that opens each connection, and the
# two generic replies: Ack and Error.

@0xea6e2aaaf2f5ab3a;

using Common = import "common.capnp";
using A = import "annotations.capnp";

# Message codes. The byte that precedes every framed message (schema/README.md,
# "Framing"). A receiver answers an unknown code with Error(unknownMessage).
# Codes are never reused; new messages take unused codes. Each constant is
# annotated with its kind, the code of its response (requests) and its frame
# cap in bytes (annotations.capnp); these annotations are the message-code
# table of schema/README.md §2 and schema/generated/limits.json.

const codeHello :UInt8 = 0x00 $A.kind(request) $A.response(0x05) $A.frameCap(65536);
# Hello: request, answered by HelloResponse.

const codeRoutingDiff :UInt8 = 0x01 $A.kind(push) $A.frameCap(1048576);
# RoutingDiff: push.

const codeInitialMapSync :UInt8 = 0x02 $A.kind(push) $A.frameCap(16777216);
# InitialMapSync: push.

const codeBootstrapRequest :UInt8 = 0x03 $A.kind(request) $A.response(0x04) $A.frameCap(4096);
# BootstrapRequest: request.

const codeBootstrapResponse :UInt8 = 0x04 $A.kind(response) $A.frameCap(262144);
# BootstrapResponse: response.

const codeHelloResponse :UInt8 = 0x05 $A.kind(response) $A.frameCap(65536);
# HelloResponse ("InitialExchange"): response to Hello.

const codeMapSyncRequest :UInt8 = 0x06 $A.kind(push) $A.frameCap(4096);
# MapSyncRequest: push ("send me a fresh InitialMapSync", schema/README.md
# §13.3).

const codeWormRequest :UInt8 = 0x10 $A.kind(request) $A.response(0x12) $A.frameCap(65536);
# WormRequest: request, answered by WormResponse.

const codeWormQuery :UInt8 = 0x11 $A.kind(request) $A.response(0x12) $A.frameCap(65536);
# WormQuery: request, answered by WormResponse.

const codeWormResponse :UInt8 = 0x12 $A.kind(response) $A.frameCap(65536);
# WormResponse: response to WormRequest and WormQuery.

const codeAddressRequest :UInt8 = 0x20 $A.kind(request) $A.response(0x21) $A.frameCap(65536);
# AddressRequest: request.

const codeAddressResponse :UInt8 = 0x21 $A.kind(response) $A.frameCap(262144);
# AddressResponse: response.

const codeFileRequest :UInt8 = 0x30 $A.kind(request) $A.response(0x31) $A.frameCap(4096);
# FileRequest: request.

const codeFileResponse :UInt8 = 0x31 $A.kind(response) $A.frameCap(2097152);
# FileResponse: response.

const codeAuthorUpdateRequest :UInt8 = 0x32 $A.kind(request) $A.response(0x33) $A.frameCap(4096);
# AuthorUpdateRequest: request.

const codeAuthorUpdateResponse :UInt8 = 0x33 $A.kind(response) $A.frameCap(327680);
# AuthorUpdateResponse: response.

const codeAuthorUpdatePush :UInt8 = 0x34 $A.kind(push) $A.frameCap(327680);
# AuthorUpdatePush: push.

const codePostNotification :UInt8 = 0x35 $A.kind(push) $A.frameCap(16384);
# PostNotification: push.

const codeManifestPush :UInt8 = 0x36 $A.kind(push) $A.frameCap(1048576);
# ManifestPush: push.

const codeBlobHeaderDiff :UInt8 = 0x37 $A.kind(push) $A.frameCap(1048576);
# BlobHeaderDiff: push.

const codePullSyncRequest :UInt8 = 0x40 $A.kind(request) $A.response(0x41) $A.frameCap(65536);
# PullSyncRequest: request.

const codePullSyncResponse :UInt8 = 0x41 $A.kind(response) $A.frameCap(8388608);
# PullSyncResponse: response.

const codePushPost :UInt8 = 0x42 $A.kind(push) $A.frameCap(2097152);
# PushPost: push.

const codeAudienceRequest :UInt8 = 0x43 $A.kind(push) $A.frameCap(16384);
# AudienceRequest: push.

const codeAudienceResponse :UInt8 = 0x44 $A.kind(push) $A.frameCap(16384);
# AudienceResponse: push.

const codeProfileUpdate :UInt8 = 0x50 $A.kind(push) $A.frameCap(65536);
# ProfileUpdate: push.

const codeDeleteRecord :UInt8 = 0x51 $A.kind(push) $A.frameCap(16384);
# DeleteRecord: push.

const codeVisibilityUpdate :UInt8 = 0x52 $A.kind(push) $A.frameCap(327680);
# VisibilityUpdate: push.

const codeVouchGrant :UInt8 = 0x53 $A.kind(push) $A.frameCap(16384);
# VouchGrant: push.

const codeComment :UInt8 = 0x54 $A.kind(push) $A.frameCap(65536);
# Comment: push.

const codeCreateChannel :UInt8 = 0x60 $A.kind(request) $A.response(0x61) $A.frameCap(4096);
# CreateChannel: request.

const codeCreateChannelResponse :UInt8 = 0x61 $A.kind(response) $A.frameCap(4096);
# CreateChannelResponse: response.

const codeEnqueue :UInt8 = 0x62 $A.kind(request) $A.response(0x63) $A.frameCap(5308416);
# Enqueue: request.

const codeEnqueueResponse :UInt8 = 0x63 $A.kind(response) $A.frameCap(4096);
# EnqueueResponse: response.

const codeFetch :UInt8 = 0x64 $A.kind(request) $A.response(0x65) $A.frameCap(4096);
# Fetch: request.

const codeFetchResponse :UInt8 = 0x65 $A.kind(response) $A.frameCap(16777216);
# FetchResponse: response.

const codeFetchWait :UInt8 = 0x66 $A.kind(request) $A.response(0x67) $A.frameCap(4096);
# FetchWait: request.

const codeFetchWaitResponse :UInt8 = 0x67 $A.kind(response) $A.frameCap(16777216) $A.root("FetchResponse");
# FetchWaitResponse: response.

const codeListChannels :UInt8 = 0x68 $A.kind(request) $A.response(0x69) $A.frameCap(4096);
# ListChannels: request.

const codeListChannelsResponse :UInt8 = 0x69 $A.kind(response) $A.frameCap(1048576);
# ListChannelsResponse: response.

const codeAck :UInt8 = 0x7e $A.kind(response) $A.frameCap(4096);
# Ack: response to a push sent on a bidirectional stream.

const codeError :UInt8 = 0x7f $A.kind(response) $A.frameCap(65536);
# Error: response to any request or push.

struct Limits {
  # Limits a node advertises in Hello / HelloResponse. A peer must not send
  # messages exceeding them; the receiver enforces them regardless. A field left
  # at 0 means "the protocol default" given in its comment.

  maxFrameBytes @0 :UInt32;
  # Largest framed message (segment table included) the sender accepts for any
  # code. Default 16 MiB. Per-code caps (schema/README.md) still apply.

  maxBlobBytes @1 :UInt32;
  # Largest blob accepted. Default and maximum: 262144 (256 KiB).

  maxMailboxPayloadBytes @2 :UInt32;
  # Largest Enqueue payload accepted. Default and maximum: 5242880 (5 MiB).
  # Only meaningful for nodes with the `mailbox/1` capability.

  maxConcurrentStreams @3 :UInt16;
  # Most concurrently open bidirectional streams the sender allows from this
  # peer. Default 100.

  maxPullBatch @4 :UInt16;
  # Most posts returned in one PullSyncResponse. Default 200.

  rateLimitPerSecond @5 :UInt16;
  # Requests per second the sender serves per identity before answering
  # `rateLimited`. Default 50. A separate, larger per-IP limit (anchor
  # default 500/s) is shared fairly between the identities on one IP
  # (README §9).

  maxFetchWaitMs @6 :UInt32;
  # Longest FetchWait the sender holds open, in ms. Default and maximum 60000.

  mailboxTtlMs @7 :UInt64;
  # How long the sender keeps undelivered mailbox messages, in ms. Default
  # 604800000 (7 days).
}

struct Hello {
  # Code 0x00. The first request on a new connection, sent by the initiator on
  # its first bidirectional stream; answered by HelloResponse (0x05), or by
  # Error(unsupportedVersion) followed by a connection close if the version
  # ranges do not overlap. The peer's identity is NOT carried here: it is the
  # ed25519 key pinned in the QUIC/TLS handshake (the NodeId).

  version @0 :UInt16;
  # Protocol version of this message; the sender's maximum. Currently 2.

  minVersion @1 :UInt16;
  # Lowest protocol version the sender speaks.

  maxVersion @2 :UInt16;
  # Highest protocol version the sender speaks. Must be >= minVersion; a Hello
  # that breaks this is answered `Error(malformed)` and the connection closed
  # (schema/README.md §1.3).

  roles @3 :List(Common.Role);
  # Roles the sender plays. Empty means [node].

  capabilities @4 :List(Text) $A.maxItems(64) $A.maxItemBytes(64);
  # Optional features the sender serves, as "name/major" tokens, e.g.
  # "pull-sync/1", "files/1", "mailbox/1", "bootstrap/1", "address-cache/1",
  # "mesh/1", "worm/1", "audience/1", "fof/1". At most 64 entries of at most 64 bytes;
  # receivers ignore tokens they do not know. A request for an undeclared
  # capability may be answered with Error(unknownMessage).

  limits @5 :Limits;
  # The sender's limits (see Limits). Absent = all defaults.

  listenAddresses @6 :List(Common.SocketAddress);
  # Addresses at which the sender accepts connections; empty for nodes that
  # cannot be reached (e.g. behind NAT). At most 8. Anchors record them in
  # their address cache (check-in) only after verifying them by dialling
  # back with the sender's NodeId pinned, and never record the address a
  # sender without listen addresses connects from (schema/README.md §12).
  # An unspecified IP (0.0.0.0 or ::) with a port means "the IP you see me
  # at, this port".

  agent @7 :Text $A.maxBytes(128);
  # Free-form implementation name and version, e.g. "distsoc-rs/0.1.0". At
  # most 128 bytes. For diagnostics only; never used for behaviour.

  timeMs @8 :UInt64;
  # The sender's wall clock (ms since epoch), for clock-skew diagnostics.
}

struct HelloResponse {
  # Code 0x05 ("InitialExchange"). The responder's answer to Hello on the same
  # stream. After it, either side may open streams for any message its peer's
  # roles and capabilities allow.

  version @0 :UInt16;
  # The selected protocol version: the highest version inside both ranges.
  # All later messages on the connection use it.

  minVersion @1 :UInt16;
  # Lowest protocol version the responder speaks.

  maxVersion @2 :UInt16;
  # Highest protocol version the responder speaks.

  roles @3 :List(Common.Role);
  # Roles the responder plays. Empty means [node].

  capabilities @4 :List(Text) $A.maxItems(64) $A.maxItemBytes(64);
  # Optional features the responder serves; same form as Hello.capabilities.

  limits @5 :Limits;
  # The responder's limits.

  listenAddresses @6 :List(Common.SocketAddress);
  # Addresses at which the responder accepts connections.

  observedAddress @7 :Common.SocketAddress;
  # The address the responder sees the initiator's packets come from. Lets a
  # node learn its public address (anchor self-detection).

  agent @8 :Text $A.maxBytes(128);
  # Free-form implementation name and version. At most 128 bytes.

  timeMs @9 :UInt64;
  # The responder's wall clock (ms since epoch).
}

struct Ack {
  # Code 0x7E. Positive reply to a push message (Kind "push" in the code table)
  # that was sent on a bidirectional stream: the message was parsed, validated
  # and accepted (stored or knowingly ignored). Pushes on unidirectional streams
  # get no reply.

  version @0 :UInt16;
  # Protocol version of this message.

  requestCode @1 :UInt8;
  # The message code of the push being acknowledged.
}

enum ErrorCode {
  # Why a request or push was refused. Numbering is part of the wire format.

  unspecified @0;
  # No more specific code applies. Receivers treat it like `internal`.

  unsupportedVersion @1;
  # The message's `version` is outside the receiver's supported range. The
  # Error carries the receiver's range in minVersion/maxVersion.

  malformed @2;
  # The frame or message could not be parsed: bad framing, out-of-bounds or far
  # pointers, nesting over 64, traversal limit, wrong id lengths, missing
  # required fields, trailing bytes.

  tooLarge @3;
  # The frame exceeds the per-code size cap, or a field exceeds its limit
  # (blob 256 KiB, mailbox payload 5 MiB).

  badSignature @4;
  # A signature did not verify under the rules of schema/README.md.

  idMismatch @5;
  # A content id (PostId, blob id, comment hash) does not match the bytes it
  # names.

  stale @6;
  # The data is older than what the receiver holds (e.g. AuthorRecentPosts with
  # a lower `seq`). Not a fault; nothing was changed.

  unauthorized @7;
  # The caller's identity may not do this (e.g. non-member enqueue to a DM
  # channel, fetch of another identity's queue, banned identity).

  notFound @8;
  # The named object (post, blob, channel, author) is not held here.

  rateLimited @9;
  # The caller exceeded a rate limit. `retryAfterMs` says when to retry.

  expired @10;
  # The object existed but its time-to-live has passed.

  internal @11;
  # The receiver failed for reasons of its own. Retrying later may succeed.

  unknownMessage @12;
  # The message code is unknown to the receiver or not served in its role.

  unavailable @13;
  # A dependency of the receiver (e.g. its database) is temporarily down, or it
  # is draining for shutdown. Retry after `retryAfterMs`, possibly elsewhere.

  nonCanonical @14;
  # Signed or hashed bytes were not in canonical form.

  quotaExceeded @15;
  # The receiver's storage quota for this data is used up: e.g. an anchor's
  # per-author or per-depositor quota of deposited posts (count or bytes
  # over a rolling window; schema/README.md "Deposit quotas"). Nothing was
  # stored. `retryAfterMs` > 0 is how long until the window frees enough
  # room for the refused item, in ms; 0 means waiting does not help (the
  # item alone exceeds the quota). Senders must not resend the same item
  # before `retryAfterMs` has passed. Receivers that predate this code
  # decode it as an unknown enumerant and treat it like `unspecified`.
}

struct Error {
  # Code 0x7F. Negative reply to any request, or to a push sent on a
  # bidirectional stream. The stream ends after it; the connection stays usable.

  version @0 :UInt16;
  # Protocol version of this message. For `unsupportedVersion` replies it is
  # the receiver's maximum version.

  code @1 :ErrorCode;
  # Why the request was refused.

  message @2 :Text $A.maxBytes(1024);
  # Human-readable detail for logs. At most 1024 bytes. Never parsed.

  requestCode @3 :UInt8;
  # The message code of the request being answered: for an unknown code, the
  # code byte as received; 0xFF only when no code byte arrived (an empty
  # stream).

  retryAfterMs @4 :UInt32;
  # For `rateLimited`, `unavailable` and `quotaExceeded`: how long to wait
  # before retrying, in ms (for `quotaExceeded`, 0 means waiting does not
  # help). 0 otherwise.

  minVersion @5 :UInt16;
  # For `unsupportedVersion`: the lowest version the receiver speaks. 0
  # otherwise.

  maxVersion @6 :UInt16;
  # For `unsupportedVersion`: the highest version the receiver speaks. 0
  # otherwise.
}
