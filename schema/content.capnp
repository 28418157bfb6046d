# distsoc wire schema — content: posts, visibility, headers, comments, deletes.
#
# Posts are content-addressed: PostId = BLAKE3-256 of the canonical bytes of a
# `Post` (schema/README.md, "Canonical form"). Visibility (who can decrypt) and
# the mutable header (comment policy, FoF wrap slots, engagement) are separate,
# separately signed metadata, so re-wrapping keys never changes a PostId.

@0x9310bc697ed779a3;

using A = import "annotations.capnp";

using Common = import "common.capnp";

struct Attachment {
  # A media blob referenced by a post. The blob itself travels separately
  # (FileRequest.blob) and is at most 256 KiB.

  blobId @0 :Data $A.exactBytes(32);
  # BLAKE3-256 of the blob's bytes (32 bytes). Receivers recompute it and
  # reject a mismatch with `idMismatch`.

  mimeType @1 :Text $A.maxBytes(128);
  # IANA media type, e.g. "image/jpeg". At most 128 bytes.

  sizeBytes @2 :UInt32;
  # Length of the blob in bytes; at most 262144.

  name @3 :Text $A.maxBytes(256);
  # Optional original file name, for display. At most 256 bytes.
}

struct PostBody {
  # The readable part of a post. Carried in clear inside a public Post, or
  # sealed (as canonical bytes) inside an encrypted one.

  text @0 :Text $A.maxBytes(65536);
  # The post text, UTF-8. At most 65536 bytes.

  attachments @1 :List(Attachment) $A.maxItems(32);
  # Media referenced by the post, in display order. At most 32.

  rotation @2 :DmRotation;
  # Only in the sealed body of a direct message: the seed of the sender's
  # next message in this thread (rotating DM ids, schema/README.md §9.1).
  # Absent in every other post; readers of other posts ignore it.

  archive @3 :DmArchiveChunk;
  # Only in the sealed body of an archive post: a batch of the author's own
  # local DM archive (schema/README.md §9.1, "The archive deposit"). Such a
  # post is by the node's NodeId and sealed to that NodeId alone, so only a
  # device holding the same network key opens it; it is never shown as
  # content. Absent in every other post; readers of other posts ignore it.

  group @4 :DmGroup;
  # Only in the sealed body of a direct message sent to a group thread
  # (schema/README.md §9.1, "Group threads"): which group thread the
  # message belongs to and who is in it. The message itself travels on the
  # pairwise thread between its sender and one member, so a group message
  # is as many DMs as there are other members. Absent in every other post
  # (a 1:1 DM included); readers of other posts ignore it.
}

struct DmGroup {
  # The group thread a DM belongs to (schema/README.md §9.1, "Group
  # threads"), carried inside the sealed PostBody, so only the members see
  # it; the anchor never does.

  threadId @0 :Data $A.exactBytes(16);
  # 16 bytes naming the group thread, the same in every message of the
  # thread from every member. Receivers file the message under it. Chosen
  # by whoever starts the thread (the reference node derives it from the
  # member set: one thread per set of members); receivers take it as
  # given.

  members @1 :List(Data) $A.maxItems(32);
  # The members' 32-byte ids (NodeIds or persona posting ids) in no
  # particular order, no id twice, the sender and the recipient included:
  # at least 2 and at most 32. A receiver shows the thread with these
  # members, as the latest message says.
}

struct DmArchiveChunk {
  # A batch of archived DMs, carried in the sealed body of an archive post
  # (schema/README.md §9.1). A writer packs at most 256 entries and keeps the
  # PostBody's canonical bytes within the sealed-body limit (262,144 bytes
  # including the 16-byte tag).

  entries @0 :List(DmArchiveEntry) $A.maxItems(1024);
  # The archived messages, oldest first. At most 1024.
}

struct DmArchiveEntry {
  # One archived DM: a row of the local archive (schema/README.md §9.1).

  peer @0 :Data $A.exactBytes(32);
  # The other side of the thread: its 32-byte NodeId (for a rotated message
  # the thread's peer, never the wire id).

  outgoing @1 :Bool;
  # True: sent by the archive's owner; false: received from `peer`.

  createdAtMs @2 :UInt64;
  # The message's signed `Post.createdAtMs`, milliseconds since the Unix
  # epoch (UTC): the order of the thread.

  text @3 :Text $A.maxBytes(65536);
  # The message text, UTF-8. At most 65536 bytes (as PostBody.text).

  dedup @4 :Data $A.exactBytes(32);
  # The row's deduplication key: BLAKE3-256 of the DM payload as it
  # travelled. A restore inserts a row only if no row has this key, so
  # restoring twice, or the same message archived on two devices, keeps one.

  group @5 :DmGroup;
  # Set for a message of a group thread (schema/README.md §9.1, "Group
  # threads"): the group thread and its members as that message named them.
  # `peer` is then the message's sender (for an outgoing one, the archive
  # owner's own id, the one it sent as). Absent for a 1:1 message.
}

struct DmRotation {
  # The rotation handshake of a DM thread (schema/README.md §9.1), carried
  # inside the sealed PostBody, so only the two ends of the thread see it.

  nextPostingId @0 :Data $A.exactBytes(32);
  # The 32-byte secret seed s(n+1) of the sender's next message in this
  # thread: its send and receive ids derive from it. Normally the default
  # derivation from this message's own seed; any other value re-seeds the
  # chain. SECRET (inside the sealed body only).
}

struct SealedBody {
  # A PostBody encrypted under the post's content-encryption key (CEK) with
  # ChaCha20-Poly1305 (schema/README.md, "Envelope encryption").

  nonce @0 :Data $A.exactBytes(12);
  # The 12-byte AEAD nonce.

  ciphertext @1 :Data $A.maxBytes(262144);
  # The canonical bytes of a PostBody, encrypted, followed by the 16-byte
  # Poly1305 tag. AAD: the ASCII bytes "distsoc/2/content". At most 262144
  # bytes.
}

struct Post {
  # An immutable post. Its canonical bytes are signed by the author's posting
  # key (purpose "post") and hashed into the PostId. Carried as
  # `SignedPost.post`.

  author @0 :Data $A.exactBytes(32);
  # The author's PostingId: the 32-byte ed25519 public key that signs the post.
  # For identities created before the posting/network key split it equals the
  # author's NodeId.

  createdAtMs @1 :UInt64;
  # When the author created the post (ms since epoch). Feeds sort by it.

  content :union {
    # The body: in clear or sealed.

    plain @2 :PostBody;
    # A public post's body.

    sealed @3 :SealedBody;
    # An encrypted post's body; readable only with a CEK from the post's
    # PostVisibility.
  }

  replyTo @4 :Data $A.exactBytes(32);
  # PostId (32 bytes) of the post this one replies to; empty if none.

  replaces @5 :Data $A.exactBytes(32);
  # PostId (32 bytes) of an earlier post by the same author that this one
  # replaces (the "re-encrypt" revocation: same logical post, new CEK); empty
  # if none. Receivers honour the matching DeleteRecord for the old id.
}

struct SignedPost {
  # A post as it travels: its canonical bytes and the author's signature.

  post @0 :Data $A.maxBytes(262144);
  # Canonical bytes of a `Post`. At most 262144 bytes. PostId = BLAKE3-256 of
  # exactly these bytes. Non-canonical bytes are rejected (`nonCanonical`).

  signature @1 :Data $A.exactBytes(64);
  # 64-byte ed25519 signature by `Post.author` over these bytes, purpose "post".
}

struct WrappedKey {
  # A post's CEK (or a group's secret seed) wrapped for one recipient.
  # 80 bytes of payload, 96 bytes encoded: 2,729 fit in a 256 KiB canonical
  # PostVisibility.

  recipient @0 :Data $A.exactBytes(32);
  # The recipient's 32-byte ed25519 public key (PostingId, NodeId or group id).
  # Indexed by anchors for recipient-match pull.

  wrapped @1 :Data $A.exactBytes(48);
  # 48 bytes: the 32-byte key sealed with ChaCha20-Poly1305 under the KEK
  # derived for this recipient, with the 16-byte tag appended.
}

struct PostVisibility {
  # Who can read a post. Separate from the PostId; replaced by VisibilityUpdate.

  union {
    public @0 :Void;
    # Anyone can read; the post's content is `plain`.

    encrypted @1 :EncryptedVisibility;
    # Only holders of a wrapped key can read; the post's content is `sealed`.
  }
}

struct EncryptedVisibility {
  # The key envelope of an encrypted post.

  ephemeralKey @0 :Data $A.exactBytes(32);
  # The 32-byte X25519 public key generated for this envelope.

  recipients @1 :List(WrappedKey) $A.maxItems(2729);
  # One entry per recipient (or one per group). At most 2,729; the canonical
  # PostVisibility is at most 262144 bytes.
}

enum CommentPolicy {
  # Who may comment on a post.

  public @0;
  # Anyone.

  followersOnly @1;
  # Only people the author follows (enforced by the author's node).

  none @2;
  # Nobody; comments are dropped.

  friendsOfFriends @3;
  # Only holders of a vouch key that opens one of the header's wrap slots; every
  # comment carries a group signature (schema/README.md, "Friend-of-friend").
}

struct WrapSlot {
  # The per-post FoF secret (`priv_post`'s 32-byte seed) sealed under one vouch
  # key V of the author. 50 bytes of payload.

  tag @0 :Data $A.exactBytes(2);
  # 2 bytes: HMAC-SHA256(V, "fof-tag" || pubPost)[0..2]. Lets a holder of many
  # vouch keys skip slots that cannot be theirs (false positive 1/65536).

  sealed @1 :Data $A.exactBytes(48);
  # 48 bytes: ChaCha20-Poly1305 under HMAC-SHA256(V, "fof-slot" || pubPost),
  # zero nonce, AAD pubPost, of the 32-byte seed; tag appended.
}

struct PostHeader {
  # Mutable, author-signed metadata of one post. Carried as
  # `SignedPostHeader.header`; a newer `updatedAtMs` replaces an older header.

  postId @0 :Data $A.exactBytes(32);
  # The 32-byte PostId this header belongs to.

  author @1 :Data $A.exactBytes(32);
  # The post author's 32-byte PostingId; signs the header.

  commentPolicy @2 :CommentPolicy;
  # Who may comment.

  pubPost @3 :Data $A.exactBytes(32);
  # For `friendsOfFriends`: the 32-byte ed25519 public key of the per-post FoF
  # keypair; comments' `groupSig` verifies against it. Empty otherwise.

  wrapSlots @4 :List(WrapSlot) $A.maxItems(4096);
  # For `friendsOfFriends`: one slot per vouch key the author distributed. At
  # most 4,096 entries are accepted; the 262144-byte canonical header is
  # reached first, at about 3,600 slots (each costs 72 bytes). Empty otherwise.

  updatedAtMs @5 :UInt64;
  # When the author produced this header (ms since epoch).
}

struct SignedPostHeader {
  # A post header and the author's signature.

  header @0 :Data $A.maxBytes(262144);
  # Canonical bytes of a `PostHeader`. At most 262144 bytes.

  signature @1 :Data $A.exactBytes(64);
  # 64-byte ed25519 signature by `PostHeader.author`, purpose "post-header".
}

struct SyncPost {
  # A post with the metadata needed to store and read it. The unit of
  # PullSyncResponse, PushPost and FileResponse.

  post @0 :SignedPost;
  # The immutable post.

  visibility @1 :PostVisibility;
  # Current visibility. Absent means public. Authenticated either by
  # `visibilitySignature` (the visibility chosen at creation) or by
  # `visibilityUpdate` (a later one).

  header @2 :SignedPostHeader;
  # Current header, if the author published one (absent = public comments).

  visibilitySignature @3 :Data $A.exactBytes(64);
  # For encrypted posts: the 64-byte signature of the author (purpose
  # "post-visibility") over BLAKE3-256(postId || canonical bytes of
  # `visibility`), so relays cannot swap recipients. It authenticates the
  # visibility chosen at creation. Required for an encrypted post without
  # `visibilityUpdate`; may be empty when `visibilityUpdate` is present.
  # Public posts need none and senders leave it empty; if a public post
  # carries one anyway it must verify (over a `PostVisibility` with the
  # `public` arm set), else the post is refused with `badSignature`
  # (schema/README.md §5).

  visibilityUpdate @4 :SignedVisibilityUpdate;
  # Present when the visibility was changed after creation ("sync access
  # list"): the newest update a relay holds (highest `updatedAtMs`). Then
  # `visibility` must equal the update body's `visibility` exactly (same
  # canonical bytes), the update must be by the post's author for this post id
  # and its signature must verify, and `visibilitySignature` may be empty. If
  # both are present, the update wins and `visibilitySignature` is ignored.
}

struct CommentBody {
  # The signed part of a comment. comment_hash = BLAKE3-256 of its canonical
  # bytes.

  parentPostId @0 :Data $A.exactBytes(32);
  # The 32-byte PostId of the post commented on.

  author @1 :Data $A.exactBytes(32);
  # The commenter's 32-byte PostingId.

  createdAtMs @2 :UInt64;
  # When the comment was written (ms since epoch).

  text @3 :Text $A.maxBytes(8192);
  # The comment text, UTF-8. At most 8192 bytes.

  replyTo @4 :Data $A.exactBytes(32);
  # comment_hash (32 bytes) of the comment this one answers; empty if none.
}

struct InlineComment {
  # A comment as stored in a post's header and propagated by Comment (0x54) and
  # BlobHeaderDiff (0x37).

  body @0 :Data $A.maxBytes(16384);
  # Canonical bytes of a `CommentBody`. At most 16384 bytes.

  signature @1 :Data $A.exactBytes(64);
  # 64-byte ed25519 signature of `CommentBody.author`, purpose "comment", over
  # the body bytes.

  groupSig @2 :Data $A.exactBytes(64);
  # For posts with `friendsOfFriends`: 64-byte ed25519 signature by the
  # per-post key (`PostHeader.pubPost`), purpose "comment-group", over the
  # 32-byte comment_hash. Proves FoF reachability. Empty otherwise.

  vouchMac @3 :Data $A.exactBytes(16);
  # For `friendsOfFriends`: 16 bytes, HMAC-SHA256(V, "fof-vouch" || pubPost ||
  # comment_hash)[0..16] for the vouch key V that opened a slot. Lets the author
  # (strict mode) tell which vouch chain the commenter used. Empty otherwise.
}

struct DeleteRecordBody {
  # An author's request that everyone delete one of their posts.

  postId @0 :Data $A.exactBytes(32);
  # The 32-byte PostId to delete.

  author @1 :Data $A.exactBytes(32);
  # The 32-byte PostingId of the post's author; signs the record. Must equal
  # the post's author, or the record is `unauthorized`.

  deletedAtMs @2 :UInt64;
  # When the author issued the delete (ms since epoch).

  replacedBy @3 :Data $A.exactBytes(32);
  # PostId (32 bytes) of a post that replaces the deleted one (re-encrypt
  # revocation); empty if none.
}

struct SignedDeleteRecord {
  # A delete record and the author's signature.

  record @0 :Data $A.maxBytes(4096);
  # Canonical bytes of a `DeleteRecordBody`. At most 4096 bytes.

  signature @1 :Data $A.exactBytes(64);
  # 64-byte ed25519 signature by `DeleteRecordBody.author`, purpose "delete".
}

struct VisibilityUpdateBody {
  # New visibility for an existing encrypted post ("sync access list": same
  # CEK re-wrapped for the remaining recipients).

  postId @0 :Data $A.exactBytes(32);
  # The 32-byte PostId whose visibility changes.

  author @1 :Data $A.exactBytes(32);
  # The 32-byte PostingId of the post's author; signs the update.

  visibility @2 :PostVisibility;
  # The complete new visibility; replaces the old one entirely.

  updatedAtMs @3 :UInt64;
  # When the author made the change. An update older than the held one is
  # `stale`.
}

struct SignedVisibilityUpdate {
  # A visibility update and the author's signature.

  update @0 :Data $A.maxBytes(266240);
  # Canonical bytes of a `VisibilityUpdateBody`. At most 266240 bytes.

  signature @1 :Data $A.exactBytes(64);
  # 64-byte ed25519 signature by `VisibilityUpdateBody.author`, purpose
  # "visibility".
}

struct RecentPost {
  # One entry of an author's recent-post list. 48 bytes of payload.

  postId @0 :Data $A.exactBytes(32);
  # The 32-byte PostId.

  createdAtMs @1 :UInt64;
  # The post's `createdAtMs`.

  hint @2 :Common.VisibilityHint;
  # Whether the post is encrypted.
}

struct AuthorRecentPosts {
  # author_recent_posts: an author's signed list of recent posts that travels
  # with every stored file of that author (discovery-protocol-v2 §3.1).

  author @0 :Data $A.exactBytes(32);
  # The 32-byte PostingId of the author; signs the list.

  seq @1 :UInt64;
  # Strictly increasing per author for each new list. A receiver never replaces
  # a list with one of lower `seq` (`stale`); a different list with the same
  # seq is kept out (first seen wins).

  updatedAtMs @2 :UInt64;
  # When the author produced the list (ms since epoch). A list older than one
  # hour triggers a staleness pull.

  posts @3 :List(RecentPost) $A.maxItems(6552);
  # Recent posts, newest first. The canonical bytes of the whole struct are at
  # most 262144 bytes (about 4,600 entries). A list of more than 6,552 entries
  # (what could fit if every entry were its smallest, 5 words) is refused
  # before any entry is read.
}

struct SignedAuthorRecentPosts {
  # An author_recent_posts list and its signature.

  recent @0 :Data $A.maxBytes(262144);
  # Canonical bytes of an `AuthorRecentPosts`. At most 262144 bytes.

  signature @1 :Data $A.exactBytes(64);
  # 64-byte ed25519 signature by `AuthorRecentPosts.author`, purpose
  # "recent-posts".
}

struct HeartBody {
  # An endorsement of a post ("heart"); feeds the file keep-priority formula.

  postId @0 :Data $A.exactBytes(32);
  # The 32-byte PostId endorsed.

  reactor @1 :Data $A.exactBytes(32);
  # The 32-byte PostingId of the person endorsing; signs the heart.

  createdAtMs @2 :UInt64;
  # When the heart was given (ms since epoch).
}

struct SignedHeart {
  # A heart and its signature.

  heart @0 :Data $A.maxBytes(1024);
  # Canonical bytes of a `HeartBody`. At most 1024 bytes.

  signature @1 :Data $A.exactBytes(64);
  # 64-byte ed25519 signature by `HeartBody.reactor`, purpose "heart".
}
