# distsoc wire schema — connection setup and generic replies.
#
# Every QUIC stream carries exactly one request frame and at most one reply
# frame. A frame is a 1-byte message code followed by one Cap'n Proto message in
# standard stream framing (schema/README.md, "Framing"). This file defines the
# message-code table, the Hello exchange that opens each connection, and the
# two generic replies: Ack and Error.

@0xea6e2aaaf2f5ab3a;

using Common = import "common.capnp";

# Message codes. The byte that precedes every framed message (schema/README.md,
# "Framing"). A receiver answers an unknown code with Error(unknownMessage).
# Codes are never reused; new messages take unused codes.

const codeHello :UInt8 = 0x00;
# Hello: request, answered by HelloResponse.

const codeRoutingDiff :UInt8 = 0x01;
# RoutingDiff: push.

const codeInitialMapSync :UInt8 = 0x02;
# InitialMapSync: push.

const codeBootstrapRequest :UInt8 = 0x03;
# BootstrapRequest: request.

const codeBootstrapResponse :UInt8 = 0x04;
# BootstrapResponse: response.

const codeHelloResponse :UInt8 = 0x05;
# HelloResponse ("InitialExchange"): response to Hello.

const codeWormRequest :UInt8 = 0x10;
# WormRequest: request, answered by WormResponse.

const codeWormQuery :UInt8 = 0x11;
# WormQuery: request, answered by WormResponse.

const codeWormResponse :UInt8 = 0x12;
# WormResponse: response (or push to originator).

const codeAddressRequest :UInt8 = 0x20;
# AddressRequest: request.

const codeAddressResponse :UInt8 = 0x21;
# AddressResponse: response.

const codeFileRequest :UInt8 = 0x30;
# FileRequest: request.

const codeFileResponse :UInt8 = 0x31;
# FileResponse: response.

const codeAuthorUpdateRequest :UInt8 = 0x32;
# AuthorUpdateRequest: request.

const codeAuthorUpdateResponse :UInt8 = 0x33;
# AuthorUpdateResponse: response.

const codeAuthorUpdatePush :UInt8 = 0x34;
# AuthorUpdatePush: push.

const codePostNotification :UInt8 = 0x35;
# PostNotification: push.

const codeManifestPush :UInt8 = 0x36;
# ManifestPush: push.

const codeBlobHeaderDiff :UInt8 = 0x37;
# BlobHeaderDiff: push.

const codePullSyncRequest :UInt8 = 0x40;
# PullSyncRequest: request.

const codePullSyncResponse :UInt8 = 0x41;
# PullSyncResponse: response.

const codePushPost :UInt8 = 0x42;
# PushPost: push.

const codeAudienceRequest :UInt8 = 0x43;
# AudienceRequest: push.

const codeAudienceResponse :UInt8 = 0x44;
# AudienceResponse: push.

const codeProfileUpdate :UInt8 = 0x50;
# ProfileUpdate: push.

const codeDeleteRecord :UInt8 = 0x51;
# DeleteRecord: push.

const codeVisibilityUpdate :UInt8 = 0x52;
# VisibilityUpdate: push.

const codeVouchGrant :UInt8 = 0x53;
# VouchGrant: push.

const codeComment :UInt8 = 0x54;
# Comment: push.

const codeCreateChannel :UInt8 = 0x60;
# CreateChannel: request.

const codeCreateChannelResponse :UInt8 = 0x61;
# CreateChannelResponse: response.

const codeEnqueue :UInt8 = 0x62;
# Enqueue: request.

const codeEnqueueResponse :UInt8 = 0x63;
# EnqueueResponse: response.

const codeFetch :UInt8 = 0x64;
# Fetch: request.

const codeFetchResponse :UInt8 = 0x65;
# FetchResponse: response.

const codeFetchWait :UInt8 = 0x66;
# FetchWait: request.

const codeFetchWaitResponse :UInt8 = 0x67;
# FetchWaitResponse: response.

const codeListChannels :UInt8 = 0x68;
# ListChannels: request.

const codeListChannelsResponse :UInt8 = 0x69;
# ListChannelsResponse: response.

const codeAck :UInt8 = 0x7e;
# Ack: response to a push sent on a bidirectional stream.

const codeError :UInt8 = 0x7f;
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

  capabilities @4 :List(Text);
  # Optional features the sender serves, as "name/major" tokens, e.g.
  # "pull-sync/1", "files/1", "mailbox/1", "bootstrap/1", "address-cache/1",
  # "worm/1", "audience/1", "fof/1". At most 64 entries of at most 64 bytes;
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

  agent @7 :Text;
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

  capabilities @4 :List(Text);
  # Optional features the responder serves; same form as Hello.capabilities.

  limits @5 :Limits;
  # The responder's limits.

  listenAddresses @6 :List(Common.SocketAddress);
  # Addresses at which the responder accepts connections.

  observedAddress @7 :Common.SocketAddress;
  # The address the responder sees the initiator's packets come from. Lets a
  # node learn its public address (anchor self-detection).

  agent @8 :Text;
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

  message @2 :Text;
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
