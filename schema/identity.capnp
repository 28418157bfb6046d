# distsoc wire schema — identities: profiles, posting identities (personas),
# group keys, vouch grants and the passphrase-encrypted identity bundle.
#
# A node has one network key (its NodeId, pinned in the QUIC handshake) and one
# or more posting keys (PostingIds) that sign content. Before the key split a
# node's only posting id equals its NodeId. Personas are additional posting
# keys; ephemeral rotating DM ids are short-lived posting keys.

@0x85ef01793fe27f44;

using A = import "annotations.capnp";

using Common = import "common.capnp";

struct PublicProfile {
  # The public profile of one posting identity. Carried as
  # `SignedProfile.profile`; a newer `updatedAtMs` replaces an older one.

  postingId @0 :Data $A.exactBytes(32);
  # The 32-byte PostingId this profile describes; signs it.

  displayName @1 :Text $A.maxBytes(128);
  # Display name, UTF-8. At most 128 bytes.

  bio @2 :Text $A.maxBytes(4096);
  # Free-form biography, UTF-8. At most 4096 bytes.

  anchors @3 :List(Data) $A.maxItems(16);
  # NodeIds (32 bytes each) of the anchors this identity checks in with, in
  # order of preference. Public infrastructure, like a mail server address;
  # others ask these anchors for the identity's address. At most 16.

  avatar @4 :Data $A.exactBytes(32);
  # blobId (32 bytes, BLAKE3-256) of an avatar image blob; empty if none.

  updatedAtMs @5 :UInt64;
  # When the profile was produced (ms since epoch). An older profile than the
  # one held is `stale`.

  networkId @6 :Data $A.exactBytes(32);
  # NodeId (32 bytes) of the node currently publishing for this posting id, as
  # a routing hint; empty to keep the link private.
}

struct SignedProfile {
  # A profile and its signature.

  profile @0 :Data $A.maxBytes(16384);
  # Canonical bytes of a `PublicProfile`. At most 16384 bytes.

  signature @1 :Data $A.exactBytes(64);
  # 64-byte ed25519 signature by `PublicProfile.postingId`, purpose "profile".
}

struct PostingIdentity {
  # A posting key held by a person: a persona, or an ephemeral DM id. Secret:
  # it only appears inside an encrypted IdentityBundle, never on the network.

  postingId @0 :Data $A.exactBytes(32);
  # The 32-byte ed25519 public key.

  secretSeed @1 :Data $A.exactBytes(32);
  # The 32-byte ed25519 secret seed. SECRET.

  displayName @2 :Text $A.maxBytes(128);
  # Local label of the persona, UTF-8. At most 128 bytes.

  createdAtMs @3 :UInt64;
  # When the key was created (ms since epoch).

  ephemeral @4 :Bool;
  # True for a rotating DM id (identity-rollout phase 6); false for a persona.
}

struct GroupKey {
  # A group's keypair as held by a member (architecture-roadmap D-3). Secret.

  groupId @0 :Data $A.exactBytes(32);
  # The group's 32-byte ed25519 public key. Posts to the group wrap their CEK
  # once, for this id.

  secretSeed @1 :Data $A.exactBytes(32);
  # The group's 32-byte secret seed. SECRET.

  epoch @2 :UInt32;
  # Key generation: increases each time the group is re-keyed after a member
  # leaves.

  name @3 :Text $A.maxBytes(128);
  # Local label, UTF-8. At most 128 bytes.
}

struct GroupKeyWrapBody {
  # Distribution of a group's secret seed to its members: the seed wrapped for
  # each member with the envelope construction (schema/README.md).

  groupId @0 :Data $A.exactBytes(32);
  # The 32-byte group id (ed25519 public key of the group).

  epoch @1 :UInt32;
  # The key generation being distributed.

  admin @2 :Data $A.exactBytes(32);
  # 32-byte PostingId of the group admin who signs this wrap.

  ephemeralKey @3 :Data $A.exactBytes(32);
  # The 32-byte X25519 ephemeral public key of this envelope.

  members @4 :List(Data) $A.maxItems(4096);
  # Current members' 32-byte ids, in no particular order; need not cover every
  # wrap (large groups are sharded). At most 4,096.

  wraps @5 :List(import "content.capnp".WrappedKey) $A.maxItems(3000);
  # The group seed wrapped for each recipient. At most 3,000 entries are
  # accepted; members and wraps share the 266240-byte limit of the canonical
  # body, which caps it at about 2,700 in practice.

  createdAtMs @6 :UInt64;
  # When the wrap was made (ms since epoch).
}

struct SignedGroupKeyWrap {
  # A group key wrap and the admin's signature.

  wrap @0 :Data $A.maxBytes(266240);
  # Canonical bytes of a `GroupKeyWrapBody`. At most 266240 bytes.

  signature @1 :Data $A.exactBytes(64);
  # 64-byte ed25519 signature by `GroupKeyWrapBody.admin`, purpose "group-key".
}

struct VouchKey {
  # A friend-of-friend vouch key V as held in a keyring. Secret.

  key @0 :Data $A.exactBytes(32);
  # The 32-byte random secret V.

  grantor @1 :Data $A.exactBytes(32);
  # 32-byte PostingId of whoever issued V (self for keys one issued).

  grantee @2 :Data $A.exactBytes(32);
  # 32-byte PostingId V was issued to; empty for keys one received.

  createdAtMs @3 :UInt64;
  # When V was issued (ms since epoch).
}

struct VouchGrantBody {
  # Hands a vouch key V from grantor to grantee, sealed so only the grantee can
  # read it. Carried in VouchGrant (0x53).

  grantor @0 :Data $A.exactBytes(32);
  # 32-byte PostingId of the issuer; signs the grant.

  grantee @1 :Data $A.exactBytes(32);
  # 32-byte PostingId (or NodeId) of the receiver.

  ephemeralKey @2 :Data $A.exactBytes(32);
  # 32-byte X25519 ephemeral public key of the envelope.

  sealedKey @3 :Data $A.exactBytes(48);
  # 48 bytes: V wrapped for `grantee` exactly like a WrappedKey's `wrapped`.

  createdAtMs @4 :UInt64;
  # When the grant was made (ms since epoch).
}

struct SignedVouchGrant {
  # A vouch grant and its signature.

  grant @0 :Data $A.maxBytes(1024);
  # Canonical bytes of a `VouchGrantBody`. At most 1024 bytes.

  signature @1 :Data $A.exactBytes(64);
  # 64-byte ed25519 signature by `VouchGrantBody.grantor`, purpose
  # "vouch-grant".
}

struct IdentityBundle {
  # Everything needed to restore a person's identity on a new device. SECRET:
  # only ever stored or moved inside an EncryptedIdentityBundle.

  version @0 :UInt16;
  # Bundle format version; currently 1. Importers reject versions they do not
  # know with `unsupportedVersion`.

  networkSeed @1 :Data $A.exactBytes(32);
  # The 32-byte ed25519 secret seed of the network key (NodeId).

  postingIdentities @2 :List(PostingIdentity) $A.maxItems(1024);
  # All posting keys (personas and live ephemeral DM ids). At most 1,024.

  defaultPostingId @3 :Data $A.exactBytes(32);
  # The 32-byte PostingId used when none is chosen.

  vouchKeys @4 :List(VouchKey) $A.maxItems(65536);
  # The friend-of-friend keyring. At most 65,536.

  groupKeys @5 :List(GroupKey) $A.maxItems(4096);
  # Group keys held. At most 4,096.

  createdAtMs @6 :UInt64;
  # When the bundle was exported (ms since epoch).

  follows @7 :List(BundleFollow) $A.maxItems(65536);
  # The posting ids this identity's personas follow. At most 65,536, no
  # (postingId, persona) pair twice.
  # Absent (null) when there are none; bundles written before this field
  # existed read as following no one.

  circles @8 :List(BundleCircle) $A.maxItems(1024);
  # The identity's circles (named recipient lists). At most 1,024, no name
  # twice. Absent (null) when there are none.

  dmThreads @9 :List(BundleDmThread) $A.maxItems(65536);
  # The rotating-DM thread state (schema/README.md §9.1): where each
  # thread's chains stand, so a restored identity goes on reading and
  # sending on the same chains. At most 65,536, no (peer, outgoing) pair
  # twice. Absent (null) when there are none; bundles written before this
  # field existed restore every thread as not started (the next message
  # starts it again on the identity channel, which the peer follows).

  archiveAnchors @10 :List(Text) $A.maxItems(64) $A.maxItemBytes(512);
  # Where the DM archive was deposited (schema/README.md §9.1 and §14): the
  # connect strings (`NodeId@host:port`, UTF-8) of the anchors the exporting
  # node deposits its posts at. An importer adds them to its anchors, so
  # its first sync pulls its own archive posts back and restores the DM
  # history. At most 64, each at most 512 bytes. Absent (null) in bundles
  # written before this field existed: the importer then learns no anchor
  # from the bundle (the person adds one, `anchor add`).
}

struct BundleDmThread {
  # One direction of one rotated DM thread kept in an IdentityBundle.
  # Secret: the seed derives the thread's keys.

  peer @0 :Data $A.exactBytes(32);
  # The peer's 32-byte NodeId.

  outgoing @1 :Bool;
  # True: our chain of messages to `peer` (`seed` is the seed of our next
  # message). False: the peer's chain we read (`seed` is the first seed of
  # the receive window, the one after the last accepted message).

  n @2 :UInt64;
  # The chain position of `seed`, at least 1 (1 is the seed a first message
  # carried).

  atMs @3 :UInt64;
  # Outgoing: when the chain was last set (ms since epoch). Incoming: the
  # signed creation time of the message that last moved the chain; a
  # re-seed from an older message is ignored.

  seed @4 :Data $A.exactBytes(32);
  # The 32-byte chain seed s(n) (secret).
}

struct BundleFollow {
  # One follow kept in an IdentityBundle.

  postingId @0 :Data $A.exactBytes(32);
  # The 32-byte posting id followed.

  followedAtMs @1 :UInt64;
  # When the follow was made (ms since epoch).

  persona @2 :Data $A.exactBytes(32);
  # The persona that follows: the 32-byte posting id of one of the bundle's
  # `postingIdentities`, or the network key's NodeId (a pre-split identity).
  # Empty means the bundle's `defaultPostingId` (bundles written before
  # follows belonged to personas leave it empty). The same `postingId` may
  # be followed by several personas; the pair (postingId, persona) appears
  # at most once.
}

struct BundleCircle {
  # One circle kept in an IdentityBundle.

  name @0 :Text $A.maxBytes(128);
  # The circle's name, UTF-8, 1 to 128 bytes.

  createdAtMs @1 :UInt64;
  # When the circle was created (ms since epoch).

  members @2 :List(Data) $A.maxItems(4096);
  # The members' 32-byte posting ids (each exactly 32 bytes), no id twice.
  # At most 4,096. Absent (null) when the circle is empty.
}

enum Kdf {
  # Password key-derivation function of an encrypted bundle.

  argon2id @0;
  # Argon2id (RFC 9106), version 0x13, 32-byte output.
}

struct KdfParams {
  # Parameters of the passphrase KDF. Importers refuse parameters outside the
  # bounds given here before doing any work (`malformed`).

  kdf @0 :Kdf;
  # The function.

  memoryKib @1 :UInt32;
  # Memory cost in KiB; 8192..=1048576. Default 65536 (64 MiB).

  iterations @2 :UInt32;
  # Time cost; 1..=10. Default 3.

  parallelism @3 :UInt32;
  # Lanes; 1..=4. Default 1.

  salt @4 :Data $A.exactBytes(16);
  # 16 random bytes.
}

struct EncryptedIdentityBundle {
  # The export file format: an IdentityBundle sealed under a key derived from
  # the user's passphrase. Stored as a standard framed Cap'n Proto message
  # (no code byte).

  version @0 :UInt16;
  # Format version; currently 1.

  kdfParams @1 :KdfParams;
  # How the key was derived. The canonical bytes of this struct are the AEAD's
  # associated data, so they cannot be altered.

  nonce @2 :Data $A.exactBytes(12);
  # 12-byte ChaCha20-Poly1305 nonce.

  ciphertext @3 :Data $A.maxBytes(67108864);
  # Canonical bytes of an IdentityBundle, encrypted, with the 16-byte tag
  # appended. At most 64 MiB.
}
