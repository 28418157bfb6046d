# distsoc wire schema — layer 3, social: pull sync, audience push, and the
# general author-signed updates (profile, delete, visibility, vouch, comment).

@0x901eaa896cb131f3;

using A = import "annotations.capnp";

using Content = import "content.capnp";
using Identity = import "identity.capnp";

struct PullSyncRequest {
  # Code 0x40, request, capability `pull-sync/1`. "Send me what I may see that
  # you stored after cursor N." The responder returns each stored post for which
  # `should_send_post` holds: the author is in `ids` and the post is public, or
  # the post is encrypted and one of its recipients other than its author is
  # in `ids`, or the author is the requester itself (schema/README.md, "Pull
  # sync"). The responder needs an index on recipients so the cost does not
  # grow with its store.

  version @0 :UInt16;
  # Protocol version of this message.

  ids @1 :List(Data) $A.maxItems(4096);
  # 32-byte ids: the authors the requester follows, plus its own PostingIds and
  # NodeId (recipient match), in one list so that a responder cannot tell a
  # persona from a follow. At most 4,096.

  sinceSeq @2 :UInt64;
  # The responder's store cursor returned as `nextSeq` by the previous pull
  # from this responder; 0 for everything.

  limit @3 :UInt16;
  # Most posts wanted in this response; 0 = responder default; clamped to the
  # responder's maxPullBatch.
}

struct PullSyncResponse {
  # Code 0x41, response to PullSyncRequest.

  version @0 :UInt16;
  # Protocol version of this message.

  posts @1 :List(Content.SyncPost) $A.maxItems(65535);
  # Matching posts in store order (ascending cursor). At most the effective
  # limit (request `limit`, else the responder's maxPullBatch), and never more
  # than 65,535.

  nextSeq @2 :UInt64;
  # Cursor to send as `sinceSeq` next time: the position after the last post
  # examined (not only returned).

  more @3 :Bool;
  # True if the responder stopped early (limit or size); pull again at once.

  deletes @4 :List(Content.SignedDeleteRecord) $A.maxItems(256);
  # Delete records stored after `sinceSeq` (same cursor as `posts`) whose
  # deleted post this pull would have returned: the requester is the author,
  # or the post was public (or is unknown to the responder) and its author is
  # in `ids`, or it was encrypted and a recipient other than the author is in
  # `ids` (the recipients when it was deleted). In store order. At most 256;
  # empty when there are none (schema/README.md §7).

  profiles @5 :List(Identity.SignedProfile) $A.maxItems(64);
  # The newest profiles the responder holds for posting ids in the request's
  # `ids` (so followers get profile changes by pull, like posts). At most 64;
  # receivers keep the newest by `updatedAtMs` and ignore stale ones.
}

struct PushPost {
  # Code 0x42, push, capability `audience/1`. Delivery of a public post to an
  # approved audience member. Encrypted posts are never pushed to their
  # recipients (identity-rollout phase 1): they travel by pull.

  version @0 :UInt16;
  # Protocol version of this message.

  post @1 :Content.SyncPost;
  # The post.

  recent @2 :Content.SignedAuthorRecentPosts;
  # The author's updated recent-post list; optional.
}

struct AudienceRequestBody {
  # A request to join an author's audience (consented push).

  requester @0 :Data $A.exactBytes(32);
  # The requester's 32-byte PostingId; signs the request.

  author @1 :Data $A.exactBytes(32);
  # The author's 32-byte PostingId.

  message @2 :Text $A.maxBytes(1024);
  # A note to the author, UTF-8. At most 1024 bytes.

  createdAtMs @3 :UInt64;
  # When the request was made (ms since epoch).
}

struct AudienceRequest {
  # Code 0x43, push. Delivered to the author's node; the author decides later
  # and answers with AudienceResponse.

  version @0 :UInt16;
  # Protocol version of this message.

  request @1 :Data $A.maxBytes(4096);
  # Canonical bytes of an `AudienceRequestBody`. At most 4096 bytes.

  signature @2 :Data $A.exactBytes(64);
  # 64-byte signature by the requester, purpose "audience-request".
}

enum AudienceDecision {
  # An author's answer to an audience request.

  approved @0;
  # The requester joins the audience and will receive PushPost.

  denied @1;
  # The request is refused.

  revoked @2;
  # A previously approved member is removed.
}

struct AudienceResponseBody {
  # An author's decision on an audience request.

  author @0 :Data $A.exactBytes(32);
  # The author's 32-byte PostingId; signs the decision.

  requester @1 :Data $A.exactBytes(32);
  # The requester's 32-byte PostingId.

  decision @2 :AudienceDecision;
  # The decision.

  decidedAtMs @3 :UInt64;
  # When the author decided (ms since epoch).
}

struct AudienceResponse {
  # Code 0x44, push. Sent by the author's node to the requester.

  version @0 :UInt16;
  # Protocol version of this message.

  response @1 :Data $A.maxBytes(4096);
  # Canonical bytes of an `AudienceResponseBody`. At most 4096 bytes.

  signature @2 :Data $A.exactBytes(64);
  # 64-byte signature by the author, purpose "audience-response".
}

struct ProfileUpdate {
  # Code 0x50, push. A new public profile. Receivers keep the newest by
  # `updatedAtMs` and answer `stale` for older ones.

  version @0 :UInt16;
  # Protocol version of this message.

  profile @1 :Identity.SignedProfile;
  # The profile.
}

struct DeleteRecord {
  # Code 0x51, push. An author's delete request; honoured by default: the post
  # is removed and the record kept so the post is not re-accepted. Judged by
  # the author's signature, whoever sends it; `Ack` only after it verified
  # (else `badSignature`, or `unauthorized` when the held post's author
  # differs). Authors deposit their delete records at anchors like posts; an
  # anchor then stops serving the post and serves the record by pull.

  version @0 :UInt16;
  # Protocol version of this message.

  record @1 :Content.SignedDeleteRecord;
  # The record.
}

struct VisibilityUpdate {
  # Code 0x52, push. New visibility for an encrypted post ("sync access list").
  # Judged by the author's signature, whoever sends it; `Ack` when applied (or
  # already held); `stale` when not newer than the held update, `notFound`
  # when the post is not held. Authors deposit updates at anchors like posts
  # (a re-deposited `PushPost` carrying the update has the same effect).

  version @0 :UInt16;
  # Protocol version of this message.

  update @1 :Content.SignedVisibilityUpdate;
  # The update.
}

struct VouchGrant {
  # Code 0x53, push. Hands a friend-of-friend vouch key to its grantee.

  version @0 :UInt16;
  # Protocol version of this message.

  grant @1 :Identity.SignedVouchGrant;
  # The sealed grant.
}

struct Comment {
  # Code 0x54, push. A new comment on a post, sent to the post's holders and
  # author. For `friendsOfFriends` posts, comments without a valid `groupSig`
  # are filtered at render; authors in strict mode reject unknown `vouchMac`
  # at ingest.

  version @0 :UInt16;
  # Protocol version of this message.

  comment @1 :Content.InlineComment;
  # The comment.
}
