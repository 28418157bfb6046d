//! Domain types of `schema/identity.capnp`: profiles, posting identities,
//! group keys, vouch keys and grants, and the passphrase-encrypted identity
//! bundle.
//!
//! Secret material (posting seeds, the network seed, group seeds, vouch keys)
//! is held in [`Zeroizing`] buffers or [`fof::VouchKey`] and wiped on drop;
//! `Debug` never prints it. Encoding and decoding an [`IdentityBundle`] for
//! sealing also wipes the intermediate Cap'n Proto buffers
//! ([`EncryptedIdentityBundle::seal`], [`EncryptedIdentityBundle::open`]).
//!
//! The bundle and its sealed form live in `bundle` (re-exported here); this
//! file keeps profiles, posting identities, group keys, vouch keys and grants,
//! and the tests of the whole module.

use core::fmt;

use distsoc_schema::identity_capnp;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::content::{
    read_wrapped_keys, sign_checked, write_wrapped_keys, ContentError, WrappedKey,
};
use super::signed::{Signed, SignedBody};
use crate::codec::{self, len32, Struct};
use crate::envelope::{self, Cek, EnvelopeError, TAG_LEN, WRAPPED_LEN};
use crate::error::DecodeError;
use crate::fof;
use crate::ids::{BlobId, NodeId, PostingId};
use crate::passphrase::{self, PassphraseError};
use crate::sign::{Purpose, SignatureError, SigningKey, SEED_LEN};

/// Longest `PublicProfile.displayName`, bytes.
pub const MAX_DISPLAY_NAME_BYTES: usize = 128;
/// Longest `PublicProfile.bio`, bytes.
pub const MAX_BIO_BYTES: usize = 4_096;
/// Most anchors of a profile.
pub const MAX_ANCHORS: usize = 16;
/// Largest canonical `PublicProfile` (`SignedProfile.profile`), bytes.
pub const MAX_PROFILE_BYTES: usize = 16_384;
/// Longest local label (`PostingIdentity.displayName`, `GroupKey.name`),
/// bytes.
pub const MAX_LABEL_BYTES: usize = 128;
/// Most member ids of a `GroupKeyWrapBody`.
pub const MAX_GROUP_MEMBERS: usize = 4_096;
/// Most wraps of a `GroupKeyWrapBody` (schema limit; the canonical size bound
/// [`MAX_GROUP_KEY_WRAP_BYTES`] caps it at about 2,770 in practice).
pub const MAX_GROUP_WRAPS: usize = 3_000;
/// Largest canonical `GroupKeyWrapBody` (`SignedGroupKeyWrap.wrap`), bytes.
pub const MAX_GROUP_KEY_WRAP_BYTES: usize = 266_240;
/// Largest canonical `VouchGrantBody` (`SignedVouchGrant.grant`), bytes.
pub const MAX_VOUCH_GRANT_BYTES: usize = 1_024;
/// The `IdentityBundle.version` this implementation writes and reads.
pub const BUNDLE_VERSION: u16 = 1;
/// Most posting identities in a bundle.
pub const MAX_POSTING_IDENTITIES: usize = 1_024;
/// Most vouch keys in a bundle.
pub const MAX_VOUCH_KEYS: usize = 65_536;
/// Most group keys in a bundle.
pub const MAX_GROUP_KEYS: usize = 4_096;
/// Most follows in a bundle.
pub const MAX_BUNDLE_FOLLOWS: usize = 65_536;
/// Most circles in a bundle.
pub const MAX_BUNDLE_CIRCLES: usize = 1_024;
/// Most rotating-DM thread directions in a bundle.
pub const MAX_BUNDLE_DM_THREADS: usize = 65_536;
/// Most archive anchors (`IdentityBundle.archiveAnchors`) in a bundle.
pub const MAX_BUNDLE_ARCHIVE_ANCHORS: usize = 64;
/// Longest archive anchor connect string in a bundle, bytes.
pub const MAX_BUNDLE_ANCHOR_BYTES: usize = 512;
/// Most members of one circle in a bundle.
pub const MAX_BUNDLE_CIRCLE_MEMBERS: usize = 4_096;
/// The `EncryptedIdentityBundle.version` this implementation writes and reads.
pub const ENCRYPTED_BUNDLE_VERSION: u16 = 1;
/// Largest `EncryptedIdentityBundle.ciphertext`: 64 MiB.
pub const MAX_BUNDLE_CIPHERTEXT_BYTES: usize = 64 * 1024 * 1024;
/// Largest canonical `IdentityBundle` (the plaintext of the ciphertext).
pub const MAX_BUNDLE_BYTES: usize = MAX_BUNDLE_CIPHERTEXT_BYTES - TAG_LEN;
/// Largest export file accepted by [`EncryptedIdentityBundle::from_file_bytes`]:
/// the ciphertext plus room for the segment table and the other fields.
pub const MAX_BUNDLE_FILE_BYTES: usize = MAX_BUNDLE_CIPHERTEXT_BYTES + 4_096;
/// Length of the KDF salt.
pub const SALT_LEN: usize = passphrase::SALT_LEN;

/// Why an identity operation (wrapping, granting, sealing, opening) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Building or signing a body failed (wrong key, too large).
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Envelope encryption failed (not a recipient, tampered, bad key).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// Passphrase sealing failed (wrong passphrase, bad parameters).
    #[error(transparent)]
    Passphrase(#[from] PassphraseError),
    /// A decrypted or received value did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A signature does not verify.
    #[error("signature does not verify: {0}")]
    BadSignature(SignatureError),
    /// Cap'n Proto failed while encoding (not expected).
    #[error("encoding failed: {0}")]
    Encode(String),
}

fn posting_id(field: &'static str, d: capnp::Result<&[u8]>) -> Result<PostingId, DecodeError> {
    Ok(PostingId(codec::id(field, d)?))
}

/// A required 32-byte secret, copied straight into a zeroizing buffer.
fn secret_seed(
    field: &'static str,
    d: capnp::Result<&[u8]>,
) -> Result<Zeroizing<[u8; SEED_LEN]>, DecodeError> {
    let d = d?;
    if d.is_empty() {
        return Err(DecodeError::Missing(field));
    }
    if d.len() != SEED_LEN {
        return Err(DecodeError::BadLength {
            field,
            expected: SEED_LEN,
            got: d.len(),
        });
    }
    let mut out = Zeroizing::new([0u8; SEED_LEN]);
    out.copy_from_slice(d);
    Ok(out)
}

/// Checks that `seed` is the secret of the ed25519 key `public`.
fn check_seed(
    field: &'static str,
    seed: &[u8; SEED_LEN],
    public: &PostingId,
) -> Result<(), DecodeError> {
    if SigningKey::from_seed(seed).public() == public.0 {
        Ok(())
    } else {
        Err(DecodeError::Invalid {
            field,
            reason: "secret seed does not belong to the public key",
        })
    }
}

// ---------------------------------------------------------------------------
// PublicProfile
// ---------------------------------------------------------------------------

/// `PublicProfile`: the public profile of one posting identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicProfile {
    /// The posting identity described; signs the profile.
    pub posting_id: PostingId,
    /// Display name (at most [`MAX_DISPLAY_NAME_BYTES`]).
    pub display_name: String,
    /// Biography (at most [`MAX_BIO_BYTES`]).
    pub bio: String,
    /// Anchors the identity checks in with, by preference (at most
    /// [`MAX_ANCHORS`]).
    pub anchors: Vec<NodeId>,
    /// Avatar image blob.
    pub avatar: Option<BlobId>,
    /// When the profile was produced, ms since epoch.
    pub updated_at_ms: u64,
    /// Node currently publishing for this posting id (routing hint).
    pub network_id: Option<NodeId>,
}

impl Struct for PublicProfile {
    type Schema = identity_capnp::public_profile::Owned;

    fn read(r: identity_capnp::public_profile::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            posting_id: posting_id("postingId", r.get_posting_id())?,
            display_name: codec::text("displayName", r.get_display_name(), MAX_DISPLAY_NAME_BYTES)?,
            bio: codec::text("bio", r.get_bio(), MAX_BIO_BYTES)?,
            anchors: codec::id_list::<32>("anchors", r.get_anchors(), MAX_ANCHORS)?
                .into_iter()
                .map(NodeId)
                .collect(),
            avatar: codec::opt_id("avatar", r.get_avatar())?.map(BlobId),
            updated_at_ms: r.get_updated_at_ms(),
            network_id: codec::opt_id("networkId", r.get_network_id())?.map(NodeId),
        })
    }

    fn write(&self, mut b: identity_capnp::public_profile::Builder<'_>) {
        b.set_posting_id(self.posting_id.as_bytes());
        b.set_display_name(self.display_name.as_str());
        b.set_bio(self.bio.as_str());
        codec::write_ids(
            b.reborrow().init_anchors(len32(&self.anchors)),
            &self.anchors,
        );
        if let Some(a) = &self.avatar {
            b.set_avatar(a.as_bytes());
        }
        b.set_updated_at_ms(self.updated_at_ms);
        if let Some(n) = &self.network_id {
            b.set_network_id(n.as_bytes());
        }
    }
}

impl SignedBody for PublicProfile {
    const PURPOSE: Purpose = Purpose::Profile;
    const MAX_BYTES: usize = MAX_PROFILE_BYTES;
    const FIELD: &'static str = "profile";
    fn signer(&self) -> PostingId {
        self.posting_id
    }
}

crate::signed_carrier!(
    PublicProfile,
    identity_capnp::signed_profile::Owned,
    get_profile,
    set_profile
);

/// `SignedProfile`: a profile and its signature.
pub type SignedProfile = Signed<PublicProfile>;

// ---------------------------------------------------------------------------
// PostingIdentity, GroupKey, VouchKey
// ---------------------------------------------------------------------------

/// `PostingIdentity`: a posting key held by a person (persona or ephemeral DM
/// id). Secret; the seed is wiped on drop and not printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PostingIdentity {
    /// The public key.
    pub posting_id: PostingId,
    /// The secret seed of `posting_id` (checked on decode).
    pub secret_seed: Zeroizing<[u8; SEED_LEN]>,
    /// Local label (at most [`MAX_LABEL_BYTES`]).
    pub display_name: String,
    /// When the key was created, ms since epoch.
    pub created_at_ms: u64,
    /// A rotating DM id rather than a persona.
    pub ephemeral: bool,
}

impl PostingIdentity {
    /// A fresh identity with a random key.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(
        rng: &mut R,
        display_name: impl Into<String>,
        created_at_ms: u64,
        ephemeral: bool,
    ) -> Self {
        Self::from_key(
            &SigningKey::generate(rng),
            display_name,
            created_at_ms,
            ephemeral,
        )
    }

    /// The identity of an existing key.
    pub fn from_key(
        key: &SigningKey,
        display_name: impl Into<String>,
        created_at_ms: u64,
        ephemeral: bool,
    ) -> Self {
        Self {
            posting_id: PostingId(key.public()),
            secret_seed: key.seed(),
            display_name: display_name.into(),
            created_at_ms,
            ephemeral,
        }
    }

    /// The signing key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_seed(&self.secret_seed)
    }
}

impl fmt::Debug for PostingIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostingIdentity")
            .field("posting_id", &self.posting_id)
            .field("secret_seed", &"<redacted>")
            .field("display_name", &self.display_name)
            .field("created_at_ms", &self.created_at_ms)
            .field("ephemeral", &self.ephemeral)
            .finish()
    }
}

impl Struct for PostingIdentity {
    type Schema = identity_capnp::posting_identity::Owned;

    fn read(r: identity_capnp::posting_identity::Reader<'_>) -> Result<Self, DecodeError> {
        let posting_id = posting_id("postingId", r.get_posting_id())?;
        let secret_seed = secret_seed("secretSeed", r.get_secret_seed())?;
        check_seed("secretSeed", &secret_seed, &posting_id)?;
        Ok(Self {
            posting_id,
            secret_seed,
            display_name: codec::text("displayName", r.get_display_name(), MAX_LABEL_BYTES)?,
            created_at_ms: r.get_created_at_ms(),
            ephemeral: r.get_ephemeral(),
        })
    }

    fn write(&self, mut b: identity_capnp::posting_identity::Builder<'_>) {
        b.set_posting_id(self.posting_id.as_bytes());
        b.set_secret_seed(self.secret_seed.as_slice());
        b.set_display_name(self.display_name.as_str());
        b.set_created_at_ms(self.created_at_ms);
        b.set_ephemeral(self.ephemeral);
    }
}

/// `GroupKey`: a group's key pair as held by a member. Secret; the seed is
/// wiped on drop and not printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey {
    /// The group's public key (group id).
    pub group_id: PostingId,
    /// The group's secret seed (checked against `group_id` on decode).
    pub secret_seed: Zeroizing<[u8; SEED_LEN]>,
    /// Key generation.
    pub epoch: u32,
    /// Local label (at most [`MAX_LABEL_BYTES`]).
    pub name: String,
}

impl GroupKey {
    /// A fresh group key pair.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(
        rng: &mut R,
        epoch: u32,
        name: impl Into<String>,
    ) -> Self {
        let key = SigningKey::generate(rng);
        Self {
            group_id: PostingId(key.public()),
            secret_seed: key.seed(),
            epoch,
            name: name.into(),
        }
    }

    /// The group's signing key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_seed(&self.secret_seed)
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupKey")
            .field("group_id", &self.group_id)
            .field("secret_seed", &"<redacted>")
            .field("epoch", &self.epoch)
            .field("name", &self.name)
            .finish()
    }
}

impl Struct for GroupKey {
    type Schema = identity_capnp::group_key::Owned;

    fn read(r: identity_capnp::group_key::Reader<'_>) -> Result<Self, DecodeError> {
        let group_id = posting_id("groupId", r.get_group_id())?;
        let secret_seed = secret_seed("secretSeed", r.get_secret_seed())?;
        check_seed("secretSeed", &secret_seed, &group_id)?;
        Ok(Self {
            group_id,
            secret_seed,
            epoch: r.get_epoch(),
            name: codec::text("name", r.get_name(), MAX_LABEL_BYTES)?,
        })
    }

    fn write(&self, mut b: identity_capnp::group_key::Builder<'_>) {
        b.set_group_id(self.group_id.as_bytes());
        b.set_secret_seed(self.secret_seed.as_slice());
        b.set_epoch(self.epoch);
        b.set_name(self.name.as_str());
    }
}

/// `VouchKey`: a friend-of-friend vouch key V as held in a keyring. The key is
/// a [`fof::VouchKey`] (wiped on drop, redacted in `Debug`).
#[derive(Debug, Clone)]
pub struct VouchKey {
    /// The secret V.
    pub key: fof::VouchKey,
    /// Who issued V (ourselves for keys we issued).
    pub grantor: PostingId,
    /// Whom V was issued to; `None` for keys we received.
    pub grantee: Option<PostingId>,
    /// When V was issued, ms since epoch.
    pub created_at_ms: u64,
}

impl PartialEq for VouchKey {
    fn eq(&self, other: &Self) -> bool {
        self.key.as_bytes() == other.key.as_bytes()
            && self.grantor == other.grantor
            && self.grantee == other.grantee
            && self.created_at_ms == other.created_at_ms
    }
}

impl Eq for VouchKey {}

impl Struct for VouchKey {
    type Schema = identity_capnp::vouch_key::Owned;

    fn read(r: identity_capnp::vouch_key::Reader<'_>) -> Result<Self, DecodeError> {
        let key = secret_seed("key", r.get_key())?;
        Ok(Self {
            key: fof::VouchKey::from_bytes(*key),
            grantor: posting_id("grantor", r.get_grantor())?,
            grantee: codec::opt_id("grantee", r.get_grantee())?.map(PostingId),
            created_at_ms: r.get_created_at_ms(),
        })
    }

    fn write(&self, mut b: identity_capnp::vouch_key::Builder<'_>) {
        b.set_key(self.key.as_bytes());
        b.set_grantor(self.grantor.as_bytes());
        if let Some(g) = &self.grantee {
            b.set_grantee(g.as_bytes());
        }
        b.set_created_at_ms(self.created_at_ms);
    }
}

// ---------------------------------------------------------------------------
// GroupKeyWrapBody
// ---------------------------------------------------------------------------

/// `GroupKeyWrapBody`: a group's secret seed wrapped for its members.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupKeyWrapBody {
    /// The group id.
    pub group_id: PostingId,
    /// The key generation distributed.
    pub epoch: u32,
    /// The admin who signs the wrap.
    pub admin: PostingId,
    /// The envelope's ephemeral X25519 public key.
    pub ephemeral_key: [u8; 32],
    /// Current members (at most [`MAX_GROUP_MEMBERS`]).
    pub members: Vec<PostingId>,
    /// The seed wrapped per recipient (at most [`MAX_GROUP_WRAPS`]).
    pub wraps: Vec<WrappedKey>,
    /// When the wrap was made, ms since epoch.
    pub created_at_ms: u64,
}

impl GroupKeyWrapBody {
    /// Wraps `group`'s seed for every member with the ephemeral secret
    /// `eph_secret` (32 fresh random bytes); `members` is also the member
    /// list.
    pub fn new(
        admin: PostingId,
        group: &GroupKey,
        members: &[PostingId],
        eph_secret: &[u8; 32],
        created_at_ms: u64,
    ) -> Result<Self, IdentityError> {
        let max = MAX_GROUP_WRAPS.min(MAX_GROUP_MEMBERS);
        if members.len() > max {
            return Err(ContentError::TooMany {
                what: "wraps",
                max,
                got: members.len(),
            }
            .into());
        }
        let ids: Vec<[u8; 32]> = members.iter().map(|m| m.0).collect();
        let (ephemeral_key, wraps) =
            envelope::wrap_group_seed(&group.secret_seed, eph_secret, &ids)?;
        Ok(Self {
            group_id: group.group_id,
            epoch: group.epoch,
            admin,
            ephemeral_key,
            members: members.to_vec(),
            wraps,
            created_at_ms,
        })
    }

    /// Recovers the group key addressed to the holder of `my_seed`; checks
    /// that the seed belongs to `group_id`. The local label is left empty.
    pub fn unwrap(&self, my_seed: &[u8; 32]) -> Result<GroupKey, IdentityError> {
        let key = envelope::unwrap_group_seed(
            my_seed,
            &self.group_id.0,
            &self.ephemeral_key,
            &self.wraps,
        )?;
        Ok(GroupKey {
            group_id: self.group_id,
            secret_seed: key.seed(),
            epoch: self.epoch,
            name: String::new(),
        })
    }
}

impl Struct for GroupKeyWrapBody {
    type Schema = identity_capnp::group_key_wrap_body::Owned;

    fn read(r: identity_capnp::group_key_wrap_body::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            group_id: posting_id("groupId", r.get_group_id())?,
            epoch: r.get_epoch(),
            admin: posting_id("admin", r.get_admin())?,
            ephemeral_key: codec::id("ephemeralKey", r.get_ephemeral_key())?,
            members: codec::id_list::<32>("members", r.get_members(), MAX_GROUP_MEMBERS)?
                .into_iter()
                .map(PostingId)
                .collect(),
            wraps: read_wrapped_keys("wraps", r.get_wraps(), MAX_GROUP_WRAPS)?,
            created_at_ms: r.get_created_at_ms(),
        })
    }

    fn write(&self, mut b: identity_capnp::group_key_wrap_body::Builder<'_>) {
        b.set_group_id(self.group_id.as_bytes());
        b.set_epoch(self.epoch);
        b.set_admin(self.admin.as_bytes());
        b.set_ephemeral_key(&self.ephemeral_key);
        codec::write_ids(
            b.reborrow().init_members(len32(&self.members)),
            &self.members,
        );
        write_wrapped_keys(b.reborrow().init_wraps(len32(&self.wraps)), &self.wraps);
        b.set_created_at_ms(self.created_at_ms);
    }
}

impl SignedBody for GroupKeyWrapBody {
    const PURPOSE: Purpose = Purpose::GroupKeyWrap;
    const MAX_BYTES: usize = MAX_GROUP_KEY_WRAP_BYTES;
    const FIELD: &'static str = "wrap";
    fn signer(&self) -> PostingId {
        self.admin
    }
}

crate::signed_carrier!(
    GroupKeyWrapBody,
    identity_capnp::signed_group_key_wrap::Owned,
    get_wrap,
    set_wrap
);

/// `SignedGroupKeyWrap`: a group key wrap and the admin's signature.
pub type SignedGroupKeyWrap = Signed<GroupKeyWrapBody>;

/// Wraps `group`'s seed for `members` and signs the wrap as `admin_key`. Draws
/// the 32-byte ephemeral secret from `rng`.
pub fn wrap_group<R: RngCore + CryptoRng + ?Sized>(
    admin_key: &SigningKey,
    group: &GroupKey,
    members: &[PostingId],
    created_at_ms: u64,
    rng: &mut R,
) -> Result<SignedGroupKeyWrap, IdentityError> {
    let mut eph = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(eph.as_mut());
    let body = GroupKeyWrapBody::new(
        PostingId(admin_key.public()),
        group,
        members,
        &eph,
        created_at_ms,
    )?;
    Ok(sign_checked(body, admin_key)?)
}

/// Verifies a signed group key wrap and recovers the group key addressed to
/// the holder of `my_seed`. Whether the admin may administer the group is the
/// caller's decision.
pub fn unwrap_group(
    my_seed: &[u8; 32],
    wrap: &SignedGroupKeyWrap,
) -> Result<GroupKey, IdentityError> {
    wrap.verify().map_err(IdentityError::BadSignature)?;
    wrap.body().unwrap(my_seed)
}

// ---------------------------------------------------------------------------
// VouchGrantBody
// ---------------------------------------------------------------------------

/// `VouchGrantBody`: hands a vouch key V from grantor to grantee.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VouchGrantBody {
    /// The issuer; signs the grant.
    pub grantor: PostingId,
    /// The receiver.
    pub grantee: PostingId,
    /// The envelope's ephemeral X25519 public key.
    pub ephemeral_key: [u8; 32],
    /// V wrapped for `grantee` like a `WrappedKey.wrapped`.
    pub sealed_key: [u8; WRAPPED_LEN],
    /// When the grant was made, ms since epoch.
    pub created_at_ms: u64,
}

impl VouchGrantBody {
    /// Seals `key` for `grantee` with the envelope construction. Draws the
    /// 32-byte ephemeral secret from `rng`.
    pub fn new<R: RngCore + CryptoRng + ?Sized>(
        grantor_key: &SigningKey,
        grantee: PostingId,
        key: &fof::VouchKey,
        created_at_ms: u64,
        rng: &mut R,
    ) -> Result<Self, IdentityError> {
        let mut eph = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(eph.as_mut());
        let (ephemeral_key, wrapped) =
            envelope::wrap_group_seed(key.as_bytes(), &eph, &[grantee.0])?;
        let sealed_key = wrapped
            .first()
            .map(|w| w.wrapped)
            .ok_or(EnvelopeError::NoRecipients)?;
        Ok(Self {
            grantor: PostingId(grantor_key.public()),
            grantee,
            ephemeral_key,
            sealed_key,
            created_at_ms,
        })
    }

    /// [`new`](Self::new), then signs the grant.
    pub fn issue<R: RngCore + CryptoRng + ?Sized>(
        grantor_key: &SigningKey,
        grantee: PostingId,
        key: &fof::VouchKey,
        created_at_ms: u64,
        rng: &mut R,
    ) -> Result<SignedVouchGrant, IdentityError> {
        let body = Self::new(grantor_key, grantee, key, created_at_ms, rng)?;
        Ok(sign_checked(body, grantor_key)?)
    }

    /// Opens the grant with the grantee's seed: the received vouch key, as a
    /// keyring entry (`grantee` empty, as for every received key).
    pub fn open(&self, my_seed: &[u8; 32]) -> Result<VouchKey, IdentityError> {
        let entry = WrappedKey {
            recipient: self.grantee.0,
            wrapped: self.sealed_key,
        };
        let v: Cek = envelope::unwrap_cek(my_seed, &self.ephemeral_key, &[entry])?;
        Ok(VouchKey {
            key: fof::VouchKey::from_bytes(*v.as_bytes()),
            grantor: self.grantor,
            grantee: None,
            created_at_ms: self.created_at_ms,
        })
    }
}

impl Struct for VouchGrantBody {
    type Schema = identity_capnp::vouch_grant_body::Owned;

    fn read(r: identity_capnp::vouch_grant_body::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            grantor: posting_id("grantor", r.get_grantor())?,
            grantee: posting_id("grantee", r.get_grantee())?,
            ephemeral_key: codec::id("ephemeralKey", r.get_ephemeral_key())?,
            sealed_key: codec::id("sealedKey", r.get_sealed_key())?,
            created_at_ms: r.get_created_at_ms(),
        })
    }

    fn write(&self, mut b: identity_capnp::vouch_grant_body::Builder<'_>) {
        b.set_grantor(self.grantor.as_bytes());
        b.set_grantee(self.grantee.as_bytes());
        b.set_ephemeral_key(&self.ephemeral_key);
        b.set_sealed_key(&self.sealed_key);
        b.set_created_at_ms(self.created_at_ms);
    }
}

impl SignedBody for VouchGrantBody {
    const PURPOSE: Purpose = Purpose::VouchGrant;
    const MAX_BYTES: usize = MAX_VOUCH_GRANT_BYTES;
    const FIELD: &'static str = "grant";
    fn signer(&self) -> PostingId {
        self.grantor
    }
}

crate::signed_carrier!(
    VouchGrantBody,
    identity_capnp::signed_vouch_grant::Owned,
    get_grant,
    set_grant
);

/// `SignedVouchGrant`: a vouch grant and its signature.
pub type SignedVouchGrant = Signed<VouchGrantBody>;

mod bundle;

pub use bundle::*;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::error::WireCode;
    use crate::messages::content::{open_post, seal_post, PostBody};

    // ---- helpers ---------------------------------------------------------

    use crate::messages::testutil::{round_trips, wire_round_trip_ok as wire_round_trip};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed(&[seed; 32])
    }

    fn pid(k: &SigningKey) -> PostingId {
        PostingId(k.public())
    }

    fn rng(seed: u8) -> ChaCha20Rng {
        ChaCha20Rng::from_seed([seed; 32])
    }

    /// Smallest accepted KDF cost: 8 MiB, one pass, one lane.
    fn small_params(salt: u8) -> KdfParams {
        KdfParams {
            kdf: Kdf::Argon2id,
            memory_kib: 8 * 1024,
            iterations: 1,
            parallelism: 1,
            salt: [salt; 16],
        }
    }

    // ---- strategies ------------------------------------------------------

    fn arr<const N: usize>() -> impl Strategy<Value = [u8; N]> {
        proptest::array::uniform(any::<u8>())
    }

    fn label() -> impl Strategy<Value = String> {
        "\\PC{0,30}"
    }

    prop_compose! {
        fn arb_profile()(
            posting_id in arr::<32>(),
            display_name in label(),
            bio in "\\PC{0,200}",
            anchors in proptest::collection::vec(arr::<32>(), 0..=MAX_ANCHORS),
            avatar in proptest::option::of(arr::<32>()),
            updated_at_ms in any::<u64>(),
            network_id in proptest::option::of(arr::<32>()),
        ) -> PublicProfile {
            PublicProfile {
                posting_id: PostingId(posting_id),
                display_name,
                bio,
                anchors: anchors.into_iter().map(NodeId).collect(),
                avatar: avatar.map(BlobId),
                updated_at_ms,
                network_id: network_id.map(NodeId),
            }
        }
    }

    fn arb_signed_profile() -> impl Strategy<Value = SignedProfile> {
        (arr::<32>(), arb_profile()).prop_map(|(seed, mut p)| {
            let k = SigningKey::from_seed(&seed);
            p.posting_id = pid(&k);
            Signed::sign(p, &k)
        })
    }

    prop_compose! {
        fn arb_posting_identity()(seed in arr::<32>(), name in label(), t in any::<u64>(), eph in any::<bool>()) -> PostingIdentity {
            PostingIdentity::from_key(&SigningKey::from_seed(&seed), name, t, eph)
        }
    }

    prop_compose! {
        fn arb_group_key()(seed in arr::<32>(), epoch in any::<u32>(), name in label()) -> GroupKey {
            let k = SigningKey::from_seed(&seed);
            GroupKey { group_id: pid(&k), secret_seed: k.seed(), epoch, name }
        }
    }

    prop_compose! {
        fn arb_vouch_key()(k in arr::<32>(), grantor in arr::<32>(), grantee in proptest::option::of(arr::<32>()), t in any::<u64>()) -> VouchKey {
            VouchKey { key: fof::VouchKey::from_bytes(k), grantor: PostingId(grantor), grantee: grantee.map(PostingId), created_at_ms: t }
        }
    }

    prop_compose! {
        fn arb_wrapped_key()(recipient in arr::<32>(), wrapped in arr::<48>()) -> WrappedKey {
            WrappedKey { recipient, wrapped }
        }
    }

    prop_compose! {
        fn arb_group_wrap()(
            group_id in arr::<32>(),
            epoch in any::<u32>(),
            admin in arr::<32>(),
            ephemeral_key in arr::<32>(),
            members in proptest::collection::vec(arr::<32>(), 0..6),
            wraps in proptest::collection::vec(arb_wrapped_key(), 0..6),
            t in any::<u64>(),
        ) -> GroupKeyWrapBody {
            GroupKeyWrapBody {
                group_id: PostingId(group_id),
                epoch,
                admin: PostingId(admin),
                ephemeral_key,
                members: members.into_iter().map(PostingId).collect(),
                wraps,
                created_at_ms: t,
            }
        }
    }

    prop_compose! {
        fn arb_vouch_grant()(grantor in arr::<32>(), grantee in arr::<32>(), eph in arr::<32>(), sealed in arr::<48>(), t in any::<u64>()) -> VouchGrantBody {
            VouchGrantBody { grantor: PostingId(grantor), grantee: PostingId(grantee), ephemeral_key: eph, sealed_key: sealed, created_at_ms: t }
        }
    }

    prop_compose! {
        fn arb_bundle()(
            network in arr::<32>(),
            posting_identities in proptest::collection::vec(arb_posting_identity(), 0..3),
            pick in any::<prop::sample::Index>(),
            vouch_keys in proptest::collection::vec(arb_vouch_key(), 0..4),
            group_keys in proptest::collection::vec(arb_group_key(), 0..3),
            t in any::<u64>(),
            follows in proptest::collection::btree_map(arr::<32>(), any::<u64>(), 0..4),
            circles in proptest::collection::vec(
                (any::<u64>(), proptest::collection::btree_set(arr::<32>(), 0..3)),
                0..3,
            ),
        ) -> IdentityBundle {
            let mut b = IdentityBundle::new(Zeroizing::new(network), t);
            let i = pick.index(posting_identities.len() + 1);
            if let Some(p) = posting_identities.get(i) {
                b.default_posting_id = p.posting_id;
            }
            b.posting_identities = posting_identities;
            b.vouch_keys = vouch_keys;
            b.group_keys = group_keys;
            b.follows = follows
                .into_iter()
                .map(|(id, at)| BundleFollow {
                    posting_id: PostingId(id),
                    followed_at_ms: at,
                    persona: None,
                })
                .collect();
            b.circles = circles
                .into_iter()
                .enumerate()
                .map(|(i, (at, members))| BundleCircle {
                    name: format!("circle {i}"),
                    created_at_ms: at,
                    members: members.into_iter().map(PostingId).collect(),
                })
                .collect();
            b
        }
    }

    prop_compose! {
        fn arb_kdf_params()(
            memory_kib in 8192u32..=1_048_576,
            iterations in 1u32..=10,
            parallelism in 1u32..=4,
            salt in arr::<16>(),
        ) -> KdfParams {
            KdfParams { kdf: Kdf::Argon2id, memory_kib, iterations, parallelism, salt }
        }
    }

    prop_compose! {
        fn arb_encrypted_bundle()(kdf_params in arb_kdf_params(), nonce in arr::<12>(), ciphertext in proptest::collection::vec(any::<u8>(), 16..200)) -> EncryptedIdentityBundle {
            EncryptedIdentityBundle { version: ENCRYPTED_BUNDLE_VERSION, kdf_params, nonce, ciphertext }
        }
    }

    // ---- round trips: one per schema struct ------------------------------

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn rt_public_profile(v in arb_profile()) { round_trips(&v)?; }

        #[test]
        fn rt_signed_profile(v in arb_signed_profile()) {
            round_trips(&v)?;
            prop_assert!(wire_round_trip(&v).verify().is_ok());
        }

        #[test]
        fn rt_posting_identity(v in arb_posting_identity()) { round_trips(&v)?; }

        #[test]
        fn rt_group_key(v in arb_group_key()) { round_trips(&v)?; }

        #[test]
        fn rt_vouch_key(v in arb_vouch_key()) { round_trips(&v)?; }

        #[test]
        fn rt_group_key_wrap_body(v in arb_group_wrap()) { round_trips(&v)?; }

        #[test]
        fn rt_signed_group_key_wrap(seed in arr::<32>(), mut v in arb_group_wrap()) {
            let k = SigningKey::from_seed(&seed);
            v.admin = pid(&k);
            let s = Signed::sign(v, &k);
            round_trips(&s)?;
            prop_assert!(wire_round_trip(&s).verify().is_ok());
        }

        #[test]
        fn rt_vouch_grant_body(v in arb_vouch_grant()) { round_trips(&v)?; }

        #[test]
        fn rt_signed_vouch_grant(seed in arr::<32>(), mut v in arb_vouch_grant()) {
            let k = SigningKey::from_seed(&seed);
            v.grantor = pid(&k);
            let s = Signed::sign(v, &k);
            round_trips(&s)?;
            prop_assert!(wire_round_trip(&s).verify().is_ok());
        }

        #[test]
        fn rt_identity_bundle(v in arb_bundle()) {
            round_trips(&v)?;
            let c = v.canonical_bytes().unwrap();
            let expected = codec::canonical_of(&v);
            prop_assert_eq!(c.as_slice(), expected.as_slice());
            prop_assert_eq!(IdentityBundle::from_canonical(&c).unwrap(), v);
        }

        #[test]
        fn rt_kdf_params(v in arb_kdf_params()) { round_trips(&v)?; }

        #[test]
        fn rt_encrypted_identity_bundle(v in arb_encrypted_bundle()) {
            round_trips(&v)?;
            prop_assert_eq!(EncryptedIdentityBundle::from_file_bytes(&v.to_file_bytes()).unwrap(), v);
        }
    }

    // ---- profiles --------------------------------------------------------

    #[test]
    fn profile_limits() {
        let k = key(1);
        let base = PublicProfile {
            posting_id: pid(&k),
            display_name: "alice".into(),
            bio: String::new(),
            anchors: vec![NodeId([1; 32]); MAX_ANCHORS],
            avatar: None,
            updated_at_ms: 1,
            network_id: None,
        };
        let s = sign_checked(base.clone(), &k).unwrap();
        assert_eq!(wire_round_trip(&s), s);
        let cases = [
            (
                PublicProfile {
                    anchors: vec![NodeId([1; 32]); MAX_ANCHORS + 1],
                    ..base.clone()
                },
                "anchors",
            ),
            (
                PublicProfile {
                    display_name: "a".repeat(MAX_DISPLAY_NAME_BYTES + 1),
                    ..base.clone()
                },
                "displayName",
            ),
            (
                PublicProfile {
                    bio: "b".repeat(MAX_BIO_BYTES + 1),
                    ..base.clone()
                },
                "bio",
            ),
        ];
        for (p, field) in cases {
            let e = codec::from_canonical::<PublicProfile>(
                "profile",
                &codec::canonical_of(&p),
                usize::MAX,
            )
            .unwrap_err();
            assert!(
                matches!(e, DecodeError::TooMany { field: f, .. } | DecodeError::TooLong { field: f, .. } if f == field),
                "{e:?}"
            );
        }
        let mut m = capnp::message::Builder::new_default();
        let mut b = m.init_root::<identity_capnp::public_profile::Builder<'_>>();
        b.set_posting_id(&[1; 32]);
        b.init_anchors(1).set(0, &[2; 31]);
        let r = m
            .get_root_as_reader::<identity_capnp::public_profile::Reader<'_>>()
            .unwrap();
        assert_eq!(
            PublicProfile::read(r).unwrap_err(),
            DecodeError::BadLength {
                field: "anchors",
                expected: 32,
                got: 31
            }
        );
    }

    // ---- groups and vouches ----------------------------------------------

    #[test]
    fn group_wrap_flow() {
        let admin = key(1);
        let group = GroupKey::generate(&mut rng(2), 3, "friends");
        let members: Vec<SigningKey> = (10..14).map(key).collect();
        let ids: Vec<PostingId> = members.iter().map(pid).collect();
        let wrap = wire_round_trip(&wrap_group(&admin, &group, &ids, 77, &mut rng(3)).unwrap());
        assert_eq!(wrap.body().members, ids);
        assert_eq!(wrap.body().epoch, 3);
        for m in &members {
            let g = unwrap_group(&m.seed(), &wrap).unwrap();
            assert_eq!(g.group_id, group.group_id);
            assert_eq!(*g.secret_seed, *group.secret_seed);
            assert_eq!(g.epoch, 3);
        }
        assert_eq!(
            unwrap_group(&key(99).seed(), &wrap).unwrap_err(),
            IdentityError::Envelope(EnvelopeError::NotARecipient)
        );
        let mut sig = *wrap.signature();
        sig[1] ^= 1;
        let forged = SignedGroupKeyWrap::decode(Ok(wrap.bytes()), Ok(&sig)).unwrap();
        assert!(matches!(
            unwrap_group(&members[0].seed(), &forged),
            Err(IdentityError::BadSignature(_))
        ));

        // A post to the group: wrapped once for the group id, opened with the
        // group seed a member unwrapped.
        let author = key(5);
        let body = PostBody {
            text: "group news".into(),
            attachments: Vec::new(),
            rotation: None,
            archive: None,
            group: None,
        };
        let (post, vis) = seal_post(&author, 1, &body, &[group.group_id], &mut rng(4)).unwrap();
        let g = unwrap_group(&members[2].seed(), &wrap).unwrap();
        assert_eq!(open_post(&g.secret_seed, &post, &vis).unwrap(), body);
        assert!(open_post(&members[2].seed(), &post, &vis).is_err());
    }

    #[test]
    fn vouch_grant_flow() {
        let grantor = key(1);
        let grantee = key(2);
        let v = fof::VouchKey::generate(&mut rng(6));
        let grant = VouchGrantBody::issue(&grantor, pid(&grantee), &v, 123, &mut rng(7)).unwrap();
        let grant = wire_round_trip(&grant);
        assert!(grant.verify().is_ok());
        let got = grant.body().open(&grantee.seed()).unwrap();
        assert_eq!(got.key.as_bytes(), v.as_bytes());
        assert_eq!(got.grantor, pid(&grantor));
        assert_eq!(got.grantee, None);
        assert_eq!(got.created_at_ms, 123);
        assert_eq!(
            grant.body().open(&key(3).seed()).unwrap_err(),
            IdentityError::Envelope(EnvelopeError::NotARecipient)
        );
        let mut tampered = grant.body().clone();
        tampered.sealed_key[0] ^= 1;
        assert_eq!(
            tampered.open(&grantee.seed()).unwrap_err(),
            IdentityError::Envelope(EnvelopeError::DecryptFailed)
        );
        // The grant must be signed by its grantor.
        let body = VouchGrantBody::new(&grantor, pid(&grantee), &v, 1, &mut rng(8)).unwrap();
        assert_eq!(
            sign_checked(body, &grantee).unwrap_err(),
            ContentError::WrongSigner
        );
    }

    // ---- bundles ---------------------------------------------------------

    fn sample_bundle() -> IdentityBundle {
        let mut r = rng(9);
        let mut b = IdentityBundle::new(Zeroizing::new([0x11; 32]), 1_700_000_000_000);
        b.posting_identities
            .push(PostingIdentity::generate(&mut r, "main", 1, false));
        b.posting_identities
            .push(PostingIdentity::generate(&mut r, "dm", 2, true));
        b.default_posting_id = b.posting_identities[0].posting_id;
        b.vouch_keys.push(VouchKey {
            key: fof::VouchKey::generate(&mut r),
            grantor: b.default_posting_id,
            grantee: Some(PostingId([4; 32])),
            created_at_ms: 3,
        });
        b.group_keys.push(GroupKey::generate(&mut r, 0, "family"));
        b
    }

    #[test]
    fn bundle_seal_open_and_wrong_passphrase() {
        let bundle = sample_bundle();
        let sealed =
            EncryptedIdentityBundle::seal(&bundle, b"correct horse", small_params(1), [2; 12])
                .unwrap();
        let file = sealed.to_file_bytes();
        let read = EncryptedIdentityBundle::from_file_bytes(&file).unwrap();
        assert_eq!(read, sealed);
        assert_eq!(read.open(b"correct horse").unwrap(), bundle);
        assert_eq!(
            read.open(b"correct horse").unwrap().default_key().public(),
            bundle.default_posting_id.0
        );

        assert_eq!(
            read.open(b"wrong horse").unwrap_err(),
            IdentityError::Passphrase(PassphraseError::WrongPassphraseOrCorrupt)
        );
        // The KDF parameters are bound as AAD: changing them (here the salt,
        // which keeps the cost minimal) fails authentication.
        let mut swapped = read.clone();
        swapped.kdf_params.salt[0] ^= 1;
        assert_eq!(
            swapped.open(b"correct horse").unwrap_err(),
            IdentityError::Passphrase(PassphraseError::WrongPassphraseOrCorrupt)
        );
        let mut flipped = read;
        flipped.ciphertext[3] ^= 1;
        assert_eq!(
            flipped.open(b"correct horse").unwrap_err(),
            IdentityError::Passphrase(PassphraseError::WrongPassphraseOrCorrupt)
        );
    }

    #[test]
    fn bundle_file_checks() {
        let sealed = EncryptedIdentityBundle {
            version: ENCRYPTED_BUNDLE_VERSION,
            kdf_params: small_params(1),
            nonce: [0; 12],
            ciphertext: vec![0; 32],
        };
        let mut file = sealed.to_file_bytes();
        file.extend_from_slice(&[0; 8]);
        assert!(matches!(
            EncryptedIdentityBundle::from_file_bytes(&file),
            Err(DecodeError::Invalid { field: "file", .. })
        ));
        assert!(EncryptedIdentityBundle::from_file_bytes(&file[..file.len() - 16]).is_err());
        assert!(EncryptedIdentityBundle::from_file_bytes(&[]).is_err());

        let v2 = EncryptedIdentityBundle {
            version: 2,
            ..sealed.clone()
        };
        let e = EncryptedIdentityBundle::from_file_bytes(&v2.to_file_bytes()).unwrap_err();
        assert_eq!(
            e,
            DecodeError::UnsupportedVersion {
                got: 2,
                min: 1,
                max: 1
            }
        );
        assert_eq!(e.error_code(), crate::error::ErrorCode::UnsupportedVersion);

        for (params, field) in [
            (
                KdfParams {
                    memory_kib: 8191,
                    ..small_params(1)
                },
                "memoryKib",
            ),
            (
                KdfParams {
                    memory_kib: 1_048_577,
                    ..small_params(1)
                },
                "memoryKib",
            ),
            (
                KdfParams {
                    iterations: 0,
                    ..small_params(1)
                },
                "iterations",
            ),
            (
                KdfParams {
                    iterations: 11,
                    ..small_params(1)
                },
                "iterations",
            ),
            (
                KdfParams {
                    parallelism: 0,
                    ..small_params(1)
                },
                "parallelism",
            ),
            (
                KdfParams {
                    parallelism: 5,
                    ..small_params(1)
                },
                "parallelism",
            ),
        ] {
            let bad = EncryptedIdentityBundle {
                kdf_params: params,
                ..sealed.clone()
            };
            let e = EncryptedIdentityBundle::from_file_bytes(&bad.to_file_bytes()).unwrap_err();
            assert!(
                matches!(e, DecodeError::Invalid { field: f, .. } if f == field),
                "{e:?}"
            );
            assert_eq!(e.error_code(), crate::error::ErrorCode::Malformed);
            // Refused before any key derivation, on both paths.
            assert!(matches!(
                bad.open(b"x"),
                Err(IdentityError::Decode(DecodeError::Invalid { .. }))
            ));
            assert!(
                EncryptedIdentityBundle::seal(&sample_bundle(), b"x", params, [0; 12]).is_err()
            );
        }
        let short = EncryptedIdentityBundle {
            ciphertext: vec![0; 15],
            ..sealed.clone()
        };
        assert!(matches!(
            EncryptedIdentityBundle::from_file_bytes(&short.to_file_bytes()),
            Err(DecodeError::Invalid {
                field: "ciphertext",
                ..
            })
        ));
        let no_params = {
            let mut m = capnp::message::Builder::new_default();
            let mut b = m.init_root::<identity_capnp::encrypted_identity_bundle::Builder<'_>>();
            b.set_version(1);
            b.set_nonce(&[0; 12]);
            b.set_ciphertext(&[0; 16]);
            capnp::serialize::write_message_to_words(&m)
        };
        assert_eq!(
            EncryptedIdentityBundle::from_file_bytes(&no_params).unwrap_err(),
            DecodeError::Missing("kdfParams")
        );
        // Unknown KDF enumerant: kdf is u16 index 0 of the KdfParams data.
        let mut bytes = codec::canonical_of(&small_params(1));
        assert_eq!(bytes[8], 0);
        bytes[8] = 3;
        assert_eq!(
            codec::from_canonical::<KdfParams>("kdfParams", &bytes, usize::MAX).unwrap_err(),
            DecodeError::UnknownVariant("kdf")
        );
    }

    #[test]
    fn bundle_consistency_checks() {
        let good = sample_bundle();
        let read = |b: &IdentityBundle| IdentityBundle::from_canonical(&codec::canonical_of(b));

        let mut bad_seed = good.clone();
        bad_seed.posting_identities[1].secret_seed = Zeroizing::new([0x22; 32]);
        assert!(matches!(
            read(&bad_seed),
            Err(DecodeError::Invalid {
                field: "secretSeed",
                ..
            })
        ));

        let mut bad_group = good.clone();
        bad_group.group_keys[0].group_id = PostingId([5; 32]);
        assert!(matches!(
            read(&bad_group),
            Err(DecodeError::Invalid {
                field: "secretSeed",
                ..
            })
        ));

        let mut foreign_default = good.clone();
        foreign_default.default_posting_id = PostingId([6; 32]);
        assert!(matches!(
            read(&foreign_default),
            Err(DecodeError::Invalid {
                field: "defaultPostingId",
                ..
            })
        ));

        // Pre-split: the network key is the default posting id.
        let mut pre_split = good.clone();
        pre_split.default_posting_id = PostingId(pre_split.node_id().0);
        assert_eq!(read(&pre_split).unwrap(), pre_split);

        let mut v2 = good.clone();
        v2.version = 2;
        assert_eq!(
            read(&v2).unwrap_err(),
            DecodeError::UnsupportedVersion {
                got: 2,
                min: 1,
                max: 1
            }
        );

        let mut bytes = good.canonical_bytes().unwrap().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        assert_eq!(
            IdentityBundle::from_canonical(&bytes).unwrap_err(),
            DecodeError::NonCanonical("bundle")
        );
        assert_eq!(
            IdentityBundle::from_canonical(&bytes[..bytes.len() - 12]).unwrap_err(),
            DecodeError::NonCanonical("bundle")
        );
    }

    #[test]
    fn secrets_are_not_printed() {
        let b = sample_bundle();
        let dump = format!(
            "{b:?} {:?} {:?} {:?}",
            b.posting_identities, b.group_keys, b.vouch_keys
        );
        let mut secrets = vec![
            hex::encode(*b.network_seed),
            format!("{:?}", *b.network_seed),
        ];
        for p in &b.posting_identities {
            secrets.push(hex::encode(*p.secret_seed));
            secrets.push(format!("{:?}", *p.secret_seed));
        }
        for g in &b.group_keys {
            secrets.push(hex::encode(*g.secret_seed));
            secrets.push(format!("{:?}", *g.secret_seed));
        }
        for v in &b.vouch_keys {
            secrets.push(format!("{:?}", v.key.as_bytes()));
        }
        for s in &secrets {
            assert!(!dump.contains(s.as_str()), "secret leaked in Debug output");
        }
        assert!(dump.contains("<redacted>"));
    }

    #[test]
    fn megabyte_bundle_canonical_round_trip() {
        let mut b = sample_bundle();
        b.vouch_keys = (0..9_216u32)
            .map(|i| {
                let mut k = [0u8; 32];
                k[..4].copy_from_slice(&i.to_le_bytes());
                VouchKey {
                    key: fof::VouchKey::from_bytes(k),
                    grantor: PostingId([1; 32]),
                    grantee: (i % 2 == 0).then_some(PostingId([2; 32])),
                    created_at_ms: u64::from(i) + 1,
                }
            })
            .collect();
        let builder = codec::build(&b);
        assert!(builder.get_segments_for_output().len() > 1);
        let canonical = b.canonical_bytes().unwrap();
        assert!(canonical.len() > 1_000_000, "{} bytes", canonical.len());
        assert_eq!(canonical.as_slice(), codec::canonical_of(&b).as_slice());
        let back = IdentityBundle::from_canonical(&canonical).unwrap();
        assert_eq!(back, b);
        assert_eq!(
            back.canonical_bytes().unwrap().as_slice(),
            canonical.as_slice()
        );
        assert_eq!(wire_round_trip(&b), b);
    }

    #[test]
    fn list_limits() {
        let mut b = sample_bundle();
        b.group_keys = vec![b.group_keys[0].clone(); MAX_GROUP_KEYS + 1];
        assert!(matches!(
            IdentityBundle::from_canonical(&codec::canonical_of(&b)),
            Err(DecodeError::TooMany {
                field: "groupKeys",
                ..
            })
        ));
        let wrap = GroupKeyWrapBody {
            group_id: PostingId([1; 32]),
            epoch: 0,
            admin: PostingId([2; 32]),
            ephemeral_key: [3; 32],
            members: vec![PostingId([4; 32]); MAX_GROUP_MEMBERS + 1],
            wraps: Vec::new(),
            created_at_ms: 0,
        };
        assert!(matches!(
            codec::from_canonical::<GroupKeyWrapBody>(
                "wrap",
                &codec::canonical_of(&wrap),
                usize::MAX
            ),
            Err(DecodeError::TooMany {
                field: "members",
                ..
            })
        ));
        let group = GroupKey::generate(&mut rng(1), 0, "");
        let too_many = vec![PostingId([4; 32]); MAX_GROUP_WRAPS + 1];
        assert!(matches!(
            GroupKeyWrapBody::new(PostingId([2; 32]), &group, &too_many, &[1; 32], 0),
            Err(IdentityError::Content(ContentError::TooMany { .. }))
        ));
    }

    #[test]
    fn a_bundle_with_a_repeated_or_empty_entry_is_refused() {
        let base = || {
            let mut b = IdentityBundle::new(Zeroizing::new([4; 32]), 1);
            b.follows = vec![BundleFollow {
                posting_id: PostingId([1; 32]),
                followed_at_ms: 1,
                persona: None,
            }];
            b.circles = vec![BundleCircle {
                name: "a".into(),
                created_at_ms: 1,
                members: vec![PostingId([1; 32])],
            }];
            b
        };
        let decode = |b: &IdentityBundle| IdentityBundle::from_canonical(&codec::canonical_of(b));
        assert_eq!(decode(&base()).unwrap(), base());
        let field_of = |r: Result<IdentityBundle, DecodeError>| match r {
            Err(DecodeError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut b = base();
        b.follows.push(b.follows[0].clone());
        assert_eq!(field_of(decode(&b)), "follows");
        // The default persona named explicitly is the same follow.
        let mut b = base();
        let default = b.default_posting_id;
        b.follows.push(BundleFollow {
            persona: Some(default),
            ..b.follows[0].clone()
        });
        assert_eq!(field_of(decode(&b)), "follows");
        // A persona the bundle does not hold is refused.
        let mut b = base();
        b.follows[0].persona = Some(PostingId([9; 32]));
        assert_eq!(field_of(decode(&b)), "follows");
        let mut b = base();
        b.circles.push(BundleCircle {
            members: Vec::new(),
            ..b.circles[0].clone()
        });
        assert_eq!(field_of(decode(&b)), "circles");
        let mut b = base();
        b.circles[0].members.push(PostingId([1; 32]));
        assert_eq!(field_of(decode(&b)), "members");
        let mut b = base();
        b.circles[0].name = " ".into();
        assert_eq!(field_of(decode(&b)), "name");
        let mut b = base();
        let p = PostingIdentity::from_key(&SigningKey::from_seed(&[5; 32]), "p", 1, false);
        b.posting_identities = vec![p.clone(), p];
        assert_eq!(field_of(decode(&b)), "postingIdentities");
    }
}
