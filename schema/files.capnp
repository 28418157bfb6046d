# distsoc wire schema — layer 2, files and content routing: fetching posts and
# blobs from any holder, author_recent_posts propagation and header diffs
# (discovery-protocol-v2 §3, identity-rollout phase 2).

@0xcd4d39047ccdc1c5;

using A = import "annotations.capnp";

using Common = import "common.capnp";
using Content = import "content.capnp";

struct StoredFile {
  # A post as held by a file holder: the post with its metadata and the
  # author's recent-post list that travels with every file.

  post @0 :Content.SyncPost;
  # The post, visibility and header.

  authorRecentPosts @1 :Content.SignedAuthorRecentPosts;
  # The freshest author_recent_posts the holder has for the post's author;
  # absent if none.

  comments @2 :List(Content.InlineComment) $A.maxItems(1024);
  # Comments the holder keeps for this post. At most 1,024.

  hearts @3 :List(Content.SignedHeart) $A.maxItems(4096);
  # Hearts the holder keeps for this post. At most 4,096.
}

struct FileRequest {
  # Code 0x30, request, capability `files/1`. Fetch a post or a blob from any
  # node that holds it.

  version @0 :UInt16;
  # Protocol version of this message.

  union {
    # What is asked for.

    post @1 :Data $A.exactBytes(32);
    # A 32-byte PostId.

    blob @2 :Data $A.exactBytes(32);
    # A 32-byte blobId (BLAKE3-256 of the blob).
  }
}

struct FileResponse {
  # Code 0x31, response to FileRequest. A post the requester may not read is
  # still served (it is ciphertext); the `should_send_post` filter applies only
  # to pull sync. Missing content is answered with Error(notFound).

  version @0 :UInt16;
  # Protocol version of this message.

  union {
    # The content.

    post @1 :StoredFile;
    # The requested post.

    blob @2 :Data $A.maxBytes(262144);
    # The requested blob's bytes; at most 262144. The receiver checks BLAKE3.
  }
}

struct AuthorUpdateRequest {
  # Code 0x32, request. Ask for a fresher author_recent_posts.

  version @0 :UInt16;
  # Protocol version of this message.

  author @1 :Data $A.exactBytes(32);
  # The author's 32-byte PostingId.

  haveSeq @2 :UInt64;
  # The `seq` the requester holds (0 if none). The responder answers
  # `notModified` if it holds nothing newer.
}

struct AuthorUpdateResponse {
  # Code 0x33, response to AuthorUpdateRequest.

  version @0 :UInt16;
  # Protocol version of this message.

  union {
    # The outcome.

    recent @1 :Content.SignedAuthorRecentPosts;
    # A list with seq > haveSeq.

    notModified @2 :Void;
    # The responder holds nothing newer than haveSeq.
  }
}

struct AuthorUpdatePush {
  # Code 0x34, push. A fresher author_recent_posts, sent to holders of the
  # author's files. Receivers apply the seq rule (lower seq never replaces
  # higher) and answer `stale` when the pushed list is older.

  version @0 :UInt16;
  # Protocol version of this message.

  recent @1 :Content.SignedAuthorRecentPosts;
  # The list.
}

struct PostNotification {
  # Code 0x35, push. Real-time "new post" notice to persistent peers. Carries
  # no content: receivers that want the post fetch it with FileRequest.

  version @0 :UInt16;
  # Protocol version of this message.

  author @1 :Data $A.exactBytes(32);
  # The author's 32-byte PostingId.

  postId @2 :Data $A.exactBytes(32);
  # The new post's 32-byte PostId.

  hint @3 :Common.VisibilityHint;
  # Public or encrypted.

  recent @4 :Content.SignedAuthorRecentPosts;
  # Optionally the author's new recent-post list (absent to save bytes).
}

struct ManifestPush {
  # Code 0x36, push. A file's updated manifest (header and recent posts) sent to
  # the file's known holders (up to 5 per file), which apply it and pull any new
  # files it references.

  version @0 :UInt16;
  # Protocol version of this message.

  postId @1 :Data $A.exactBytes(32);
  # The 32-byte PostId of the file whose manifest changed.

  header @2 :Content.SignedPostHeader;
  # The post's current header; absent if unchanged.

  recent @3 :Content.SignedAuthorRecentPosts;
  # The author's current recent-post list; absent if unchanged.
}

struct BlobHeaderDiff {
  # Code 0x37, push. Engagement changes on one file (comments, hearts) sent to
  # the file's holders. Application is idempotent.

  version @0 :UInt16;
  # Protocol version of this message.

  postId @1 :Data $A.exactBytes(32);
  # The 32-byte PostId the engagement belongs to.

  addedComments @2 :List(Content.InlineComment) $A.maxItems(256);
  # New comments. At most 256.

  removedComments @3 :List(Data) $A.maxItems(256);
  # comment_hashes (32 bytes) of comments removed by their authors or the post
  # author. At most 256.

  addedHearts @4 :List(Content.SignedHeart) $A.maxItems(1024);
  # New hearts. At most 1,024.
}
