//! The identity bundle ([`IdentityBundle`]): every secret of an identity in
//! one canonical struct, and its passphrase-sealed form with the KDF
//! parameters ([`KdfParams`], [`EncryptedIdentityBundle`]).

use core::fmt;

use capnp::message::{Builder, HeapAllocator, Reader, SegmentArray};
use distsoc_schema::identity_capnp;
use zeroize::{Zeroize, Zeroizing};

use super::{
    posting_id, secret_seed, GroupKey, IdentityError, PostingIdentity, VouchKey, BUNDLE_VERSION,
    ENCRYPTED_BUNDLE_VERSION, MAX_BUNDLE_ANCHOR_BYTES, MAX_BUNDLE_ARCHIVE_ANCHORS,
    MAX_BUNDLE_BYTES, MAX_BUNDLE_CIPHERTEXT_BYTES, MAX_BUNDLE_CIRCLES, MAX_BUNDLE_CIRCLE_MEMBERS,
    MAX_BUNDLE_DM_THREADS, MAX_BUNDLE_FILE_BYTES, MAX_BUNDLE_FOLLOWS, MAX_GROUP_KEYS,
    MAX_LABEL_BYTES, MAX_POSTING_IDENTITIES, MAX_VOUCH_KEYS, SALT_LEN,
};
use crate::codec::{self, len32, Struct};
use crate::envelope::{NONCE_LEN, TAG_LEN};
use crate::error::DecodeError;
use crate::ids::{NodeId, PostingId};
use crate::limits::reader_options;
use crate::messages::content::ContentError;
use crate::passphrase;
use crate::sign::{SigningKey, SEED_LEN};

// ---------------------------------------------------------------------------
// IdentityBundle
// ---------------------------------------------------------------------------

/// `IdentityBundle`: everything needed to restore an identity. Secret; only
/// stored or moved inside an [`EncryptedIdentityBundle`].
///
/// Checked on decode: `version` is [`BUNDLE_VERSION`] (`unsupportedVersion`
/// otherwise), every seed belongs to its public key, `default_posting_id`
/// is one of the posting identities or the network key (pre-split
/// identity), no posting id, follow or circle name appears twice, and no
/// circle lists a member twice.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityBundle {
    /// Bundle format version ([`BUNDLE_VERSION`]).
    pub version: u16,
    /// Secret seed of the network key (NodeId).
    pub network_seed: Zeroizing<[u8; SEED_LEN]>,
    /// All posting keys (at most [`MAX_POSTING_IDENTITIES`]).
    pub posting_identities: Vec<PostingIdentity>,
    /// The posting id used when none is chosen.
    pub default_posting_id: PostingId,
    /// The FoF keyring (at most [`MAX_VOUCH_KEYS`]).
    pub vouch_keys: Vec<VouchKey>,
    /// Group keys held (at most [`MAX_GROUP_KEYS`]).
    pub group_keys: Vec<GroupKey>,
    /// When the bundle was exported, ms since epoch.
    pub created_at_ms: u64,
    /// The posting ids followed (at most [`MAX_BUNDLE_FOLLOWS`]).
    pub follows: Vec<BundleFollow>,
    /// The circles (at most [`MAX_BUNDLE_CIRCLES`]).
    pub circles: Vec<BundleCircle>,
    /// The rotating-DM thread state (at most [`MAX_BUNDLE_DM_THREADS`], no
    /// (peer, outgoing) pair twice).
    pub dm_threads: Vec<BundleDmThread>,
    /// Where the DM archive was deposited: anchor connect strings
    /// (`NodeId@host:port`; at most [`MAX_BUNDLE_ARCHIVE_ANCHORS`], each at
    /// most [`MAX_BUNDLE_ANCHOR_BYTES`] bytes).
    pub archive_anchors: Vec<String>,
}

/// `BundleDmThread`: one direction of one rotated DM thread kept in an
/// [`IdentityBundle`]. Secret (the seed derives the thread's keys); its
/// `Debug` shows no seed.
#[derive(Clone, PartialEq, Eq)]
pub struct BundleDmThread {
    /// The peer's NodeId.
    pub peer: NodeId,
    /// Ours (`true`) or the peer's chain we read (`false`).
    pub outgoing: bool,
    /// The chain position of `seed` (at least 1).
    pub n: u64,
    /// When the chain was last moved (see the schema), ms since epoch.
    pub at_ms: u64,
    /// The chain seed.
    pub seed: Zeroizing<[u8; SEED_LEN]>,
}

impl fmt::Debug for BundleDmThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleDmThread")
            .field("peer", &self.peer)
            .field("outgoing", &self.outgoing)
            .field("n", &self.n)
            .field("at_ms", &self.at_ms)
            .finish_non_exhaustive()
    }
}

impl Struct for BundleDmThread {
    type Schema = identity_capnp::bundle_dm_thread::Owned;

    fn read(r: identity_capnp::bundle_dm_thread::Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.get_n();
        if n == 0 {
            return Err(DecodeError::Invalid {
                field: "n",
                reason: "a chain position is at least 1",
            });
        }
        Ok(Self {
            peer: NodeId(codec::id("peer", r.get_peer())?),
            outgoing: r.get_outgoing(),
            n,
            at_ms: r.get_at_ms(),
            seed: secret_seed("seed", r.get_seed())?,
        })
    }

    fn write(&self, mut b: identity_capnp::bundle_dm_thread::Builder<'_>) {
        b.set_peer(self.peer.as_bytes());
        b.set_outgoing(self.outgoing);
        b.set_n(self.n);
        b.set_at_ms(self.at_ms);
        b.set_seed(self.seed.as_slice());
    }
}

/// `BundleFollow`: one follow kept in an [`IdentityBundle`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BundleFollow {
    /// The posting id followed.
    pub posting_id: PostingId,
    /// When the follow was made, ms since epoch.
    pub followed_at_ms: u64,
    /// The persona that follows (one of the bundle's posting ids or the
    /// network key's); `None`: the bundle's default posting id.
    pub persona: Option<PostingId>,
}

impl BundleFollow {
    /// The persona that follows, `None` resolved to `default`.
    pub fn persona_or(&self, default: PostingId) -> PostingId {
        self.persona.unwrap_or(default)
    }
}

impl Struct for BundleFollow {
    type Schema = identity_capnp::bundle_follow::Owned;

    fn read(r: identity_capnp::bundle_follow::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            posting_id: posting_id("postingId", r.get_posting_id())?,
            followed_at_ms: r.get_followed_at_ms(),
            persona: codec::opt_id("persona", r.get_persona())?.map(PostingId),
        })
    }

    fn write(&self, mut b: identity_capnp::bundle_follow::Builder<'_>) {
        b.set_posting_id(self.posting_id.as_bytes());
        b.set_followed_at_ms(self.followed_at_ms);
        if let Some(p) = self.persona {
            b.set_persona(p.as_bytes());
        }
    }
}

/// `BundleCircle`: one circle kept in an [`IdentityBundle`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BundleCircle {
    /// The name: 1 to [`MAX_LABEL_BYTES`] bytes, not only whitespace.
    pub name: String,
    /// When the circle was created, ms since epoch.
    pub created_at_ms: u64,
    /// The members (at most [`MAX_BUNDLE_CIRCLE_MEMBERS`], no id twice).
    pub members: Vec<PostingId>,
}

impl Struct for BundleCircle {
    type Schema = identity_capnp::bundle_circle::Owned;

    fn read(r: identity_capnp::bundle_circle::Reader<'_>) -> Result<Self, DecodeError> {
        let name = codec::text("name", r.get_name(), MAX_LABEL_BYTES)?;
        if name.trim().is_empty() {
            return Err(DecodeError::Invalid {
                field: "name",
                reason: "a circle name must not be empty",
            });
        }
        let members: Vec<PostingId> =
            codec::id_list::<32>("members", r.get_members(), MAX_BUNDLE_CIRCLE_MEMBERS)?
                .into_iter()
                .map(PostingId)
                .collect();
        if has_duplicates(members.iter()) {
            return Err(DecodeError::Invalid {
                field: "members",
                reason: "a member is listed twice",
            });
        }
        Ok(Self {
            name,
            created_at_ms: r.get_created_at_ms(),
            members,
        })
    }

    fn write(&self, mut b: identity_capnp::bundle_circle::Builder<'_>) {
        b.set_name(self.name.as_str());
        b.set_created_at_ms(self.created_at_ms);
        codec::write_ids(
            b.reborrow().init_members(len32(&self.members)),
            &self.members,
        );
    }
}

/// Whether any item occurs twice.
fn has_duplicates<T: Ord>(items: impl Iterator<Item = T>) -> bool {
    let mut v: Vec<T> = items.collect();
    let n = v.len();
    v.sort_unstable();
    v.dedup();
    v.len() != n
}

impl IdentityBundle {
    /// A bundle of the current version holding only the network key, whose
    /// id is also the default posting id (pre-split identity).
    pub fn new(network_seed: Zeroizing<[u8; SEED_LEN]>, created_at_ms: u64) -> Self {
        let default_posting_id = PostingId(SigningKey::from_seed(&network_seed).public());
        Self {
            version: BUNDLE_VERSION,
            network_seed,
            posting_identities: Vec::new(),
            default_posting_id,
            vouch_keys: Vec::new(),
            group_keys: Vec::new(),
            created_at_ms,
            follows: Vec::new(),
            circles: Vec::new(),
            dm_threads: Vec::new(),
            archive_anchors: Vec::new(),
        }
    }

    /// The network signing key.
    pub fn network_key(&self) -> SigningKey {
        SigningKey::from_seed(&self.network_seed)
    }

    /// The NodeId.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.network_key().public())
    }

    /// The signing key of the default posting id.
    pub fn default_key(&self) -> SigningKey {
        self.posting_identities
            .iter()
            .find(|p| p.posting_id == self.default_posting_id)
            .map(PostingIdentity::signing_key)
            .unwrap_or_else(|| self.network_key())
    }

    /// The canonical bytes, in a buffer wiped on drop. The Cap'n Proto
    /// buffers used on the way are wiped too.
    pub fn canonical_bytes(&self) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        let mut b = codec::build(self);
        let out = canonical_scrubbed(&b);
        if let Ok(root) = b.get_root::<identity_capnp::identity_bundle::Builder<'_>>() {
            scrub_bundle(root);
        }
        out.map_err(|e| IdentityError::Encode(e.to_string()))
    }

    /// Decodes canonical bytes (at most [`MAX_BUNDLE_BYTES`]), rejecting
    /// non-canonical encodings. The working copy is wiped afterwards.
    pub fn from_canonical(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(DecodeError::TooLong {
                field: "bundle",
                max: MAX_BUNDLE_BYTES,
                got: bytes.len(),
            });
        }
        if bytes.is_empty() {
            return Err(DecodeError::Missing("bundle"));
        }
        if !bytes.len().is_multiple_of(8) {
            return Err(DecodeError::NonCanonical("bundle"));
        }
        let mut words = capnp::Word::allocate_zeroed_vec(bytes.len() / 8);
        capnp::Word::words_to_bytes_mut(&mut words).copy_from_slice(bytes);
        let result = read_bundle_words(&words);
        capnp::Word::words_to_bytes_mut(&mut words).zeroize();
        result
    }
}

/// Canonicalizes a built bundle into a zeroizing buffer and wipes the
/// intermediate canonical builder.
fn canonical_scrubbed(b: &Builder<HeapAllocator>) -> capnp::Result<Zeroizing<Vec<u8>>> {
    let root = b.get_root_as_reader::<identity_capnp::identity_bundle::Reader<'_>>()?;
    let words = root.total_size()?.word_count.saturating_add(1);
    let first =
        u32::try_from(words).map_err(|_| capnp::Error::failed("bundle too large".to_string()))?;
    let mut c = Builder::new(HeapAllocator::new().first_segment_words(first));
    c.set_root_canonical::<identity_capnp::identity_bundle::Owned>(root)?;
    let out = {
        let segments = c.get_segments_for_output();
        match &segments[..] {
            [only] => Ok(Zeroizing::new(only.to_vec())),
            _ => Err(capnp::Error::failed(
                "canonical form is not one segment".to_string(),
            )),
        }
    };
    if let Ok(root) = c.get_root::<identity_capnp::identity_bundle::Builder<'_>>() {
        scrub_bundle(root);
    }
    out
}

/// Overwrites every secret of a bundle in a builder with zeros.
fn scrub_bundle(mut b: identity_capnp::identity_bundle::Builder<'_>) {
    if let Ok(d) = b.reborrow().get_network_seed() {
        d.zeroize();
    }
    if let Ok(mut l) = b.reborrow().get_posting_identities() {
        for i in 0..l.len() {
            if let Ok(d) = l.reborrow().get(i).get_secret_seed() {
                d.zeroize();
            }
        }
    }
    if let Ok(mut l) = b.reborrow().get_vouch_keys() {
        for i in 0..l.len() {
            if let Ok(d) = l.reborrow().get(i).get_key() {
                d.zeroize();
            }
        }
    }
    if let Ok(mut l) = b.get_group_keys() {
        for i in 0..l.len() {
            if let Ok(d) = l.reborrow().get(i).get_secret_seed() {
                d.zeroize();
            }
        }
    }
}

fn read_bundle_words(words: &[capnp::Word]) -> Result<IdentityBundle, DecodeError> {
    let segments = [capnp::Word::words_to_bytes(words)];
    let reader = Reader::new(SegmentArray::new(&segments), reader_options(words.len()));
    if !reader.is_canonical()? {
        return Err(DecodeError::NonCanonical("bundle"));
    }
    IdentityBundle::read(reader.get_root()?)
}

impl fmt::Debug for IdentityBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityBundle")
            .field("version", &self.version)
            .field("network_seed", &"<redacted>")
            .field("posting_identities", &self.posting_identities)
            .field("default_posting_id", &self.default_posting_id)
            .field("vouch_keys", &self.vouch_keys.len())
            .field("group_keys", &self.group_keys)
            .field("created_at_ms", &self.created_at_ms)
            .field("follows", &self.follows.len())
            .field("dm_threads", &self.dm_threads.len())
            .field("archive_anchors", &self.archive_anchors)
            .field("circles", &self.circles.len())
            .finish()
    }
}

impl Struct for IdentityBundle {
    type Schema = identity_capnp::identity_bundle::Owned;

    fn read(r: identity_capnp::identity_bundle::Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.get_version();
        if version != BUNDLE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                got: version,
                min: BUNDLE_VERSION,
                max: BUNDLE_VERSION,
            });
        }
        let network_seed = secret_seed("networkSeed", r.get_network_seed())?;
        let posting_identities = codec::list(
            "postingIdentities",
            r.get_posting_identities(),
            MAX_POSTING_IDENTITIES,
            PostingIdentity::read,
        )?;
        let default_posting_id = posting_id("defaultPostingId", r.get_default_posting_id())?;
        if !posting_identities
            .iter()
            .any(|p| p.posting_id == default_posting_id)
            && SigningKey::from_seed(&network_seed).public() != default_posting_id.0
        {
            return Err(DecodeError::Invalid {
                field: "defaultPostingId",
                reason: "neither a posting identity of the bundle nor the network key",
            });
        }
        if has_duplicates(posting_identities.iter().map(|p| p.posting_id)) {
            return Err(DecodeError::Invalid {
                field: "postingIdentities",
                reason: "a posting id is listed twice",
            });
        }
        let follows = codec::list(
            "follows",
            r.get_follows(),
            MAX_BUNDLE_FOLLOWS,
            BundleFollow::read,
        )?;
        let network_id = PostingId(SigningKey::from_seed(&network_seed).public());
        let is_persona =
            |p: PostingId| p == network_id || posting_identities.iter().any(|i| i.posting_id == p);
        if follows
            .iter()
            .any(|f| f.persona.is_some_and(|p| !is_persona(p)))
        {
            return Err(DecodeError::Invalid {
                field: "follows",
                reason: "a follow's persona is not a posting identity of the bundle",
            });
        }
        if has_duplicates(
            follows
                .iter()
                .map(|f| (f.posting_id, f.persona_or(default_posting_id))),
        ) {
            return Err(DecodeError::Invalid {
                field: "follows",
                reason: "a posting id is followed twice by one persona",
            });
        }
        let circles = codec::list(
            "circles",
            r.get_circles(),
            MAX_BUNDLE_CIRCLES,
            BundleCircle::read,
        )?;
        if has_duplicates(circles.iter().map(|c| c.name.as_str())) {
            return Err(DecodeError::Invalid {
                field: "circles",
                reason: "a circle name is listed twice",
            });
        }
        let dm_threads = codec::list(
            "dmThreads",
            r.get_dm_threads(),
            MAX_BUNDLE_DM_THREADS,
            BundleDmThread::read,
        )?;
        if has_duplicates(dm_threads.iter().map(|t| (t.peer, t.outgoing))) {
            return Err(DecodeError::Invalid {
                field: "dmThreads",
                reason: "a thread direction is listed twice",
            });
        }
        Ok(Self {
            version,
            network_seed,
            posting_identities,
            default_posting_id,
            vouch_keys: codec::list(
                "vouchKeys",
                r.get_vouch_keys(),
                MAX_VOUCH_KEYS,
                VouchKey::read,
            )?,
            group_keys: codec::list(
                "groupKeys",
                r.get_group_keys(),
                MAX_GROUP_KEYS,
                GroupKey::read,
            )?,
            created_at_ms: r.get_created_at_ms(),
            follows,
            circles,
            dm_threads,
            archive_anchors: codec::text_list(
                "archiveAnchors",
                r.get_archive_anchors(),
                MAX_BUNDLE_ARCHIVE_ANCHORS,
                MAX_BUNDLE_ANCHOR_BYTES,
            )?,
        })
    }

    fn write(&self, mut b: identity_capnp::identity_bundle::Builder<'_>) {
        b.set_version(self.version);
        b.set_network_seed(self.network_seed.as_slice());
        let mut l = b
            .reborrow()
            .init_posting_identities(len32(&self.posting_identities));
        for (i, p) in self.posting_identities.iter().enumerate() {
            p.write(l.reborrow().get(i as u32));
        }
        b.set_default_posting_id(self.default_posting_id.as_bytes());
        let mut l = b.reborrow().init_vouch_keys(len32(&self.vouch_keys));
        for (i, v) in self.vouch_keys.iter().enumerate() {
            v.write(l.reborrow().get(i as u32));
        }
        let mut l = b.reborrow().init_group_keys(len32(&self.group_keys));
        for (i, g) in self.group_keys.iter().enumerate() {
            g.write(l.reborrow().get(i as u32));
        }
        b.set_created_at_ms(self.created_at_ms);
        codec::write_structs(
            b.reborrow().init_follows(len32(&self.follows)),
            &self.follows,
        );
        codec::write_structs(
            b.reborrow().init_circles(len32(&self.circles)),
            &self.circles,
        );
        codec::write_structs(
            b.reborrow().init_dm_threads(len32(&self.dm_threads)),
            &self.dm_threads,
        );
        let mut l = b
            .reborrow()
            .init_archive_anchors(len32(&self.archive_anchors));
        for (i, a) in self.archive_anchors.iter().enumerate() {
            l.set(i as u32, a.as_str());
        }
    }
}

// ---------------------------------------------------------------------------
// KDF parameters and the encrypted bundle
// ---------------------------------------------------------------------------

/// `Kdf`: the passphrase key-derivation function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kdf {
    /// Argon2id (RFC 9106), version 0x13, 32-byte output.
    #[default]
    Argon2id,
}

/// `KdfParams`: parameters of the passphrase KDF. Bounds (checked on decode,
/// `malformed`): memory 8192..=1048576 KiB, iterations 1..=10, parallelism
/// 1..=4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KdfParams {
    /// The function.
    pub kdf: Kdf,
    /// Memory cost, KiB.
    pub memory_kib: u32,
    /// Time cost.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Random salt, fresh per export.
    pub salt: [u8; SALT_LEN],
}

impl KdfParams {
    /// The recommended parameters (64 MiB, 3 passes, 1 lane) with `salt`.
    pub fn recommended(salt: [u8; SALT_LEN]) -> Self {
        Self::from_argon2(&passphrase::KdfParams::recommended(salt))
    }

    /// From the passphrase module's parameters (Argon2id).
    pub fn from_argon2(p: &passphrase::KdfParams) -> Self {
        Self {
            kdf: Kdf::Argon2id,
            memory_kib: p.memory_kib,
            iterations: p.iterations,
            parallelism: p.parallelism,
            salt: p.salt,
        }
    }

    /// The Argon2id parameters for [`crate::passphrase`].
    pub fn argon2(&self) -> passphrase::KdfParams {
        passphrase::KdfParams {
            memory_kib: self.memory_kib,
            iterations: self.iterations,
            parallelism: self.parallelism,
            salt: self.salt,
        }
    }

    /// Checks the schema bounds.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let check = |field, value: u32, min: u32, max: u32, reason| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(DecodeError::Invalid { field, reason })
            }
        };
        check(
            "memoryKib",
            self.memory_kib,
            passphrase::MIN_MEMORY_KIB,
            passphrase::MAX_MEMORY_KIB,
            "outside 8192..=1048576",
        )?;
        check(
            "iterations",
            self.iterations,
            passphrase::MIN_ITERATIONS,
            passphrase::MAX_ITERATIONS,
            "outside 1..=10",
        )?;
        check(
            "parallelism",
            self.parallelism,
            passphrase::MIN_PARALLELISM,
            passphrase::MAX_PARALLELISM,
            "outside 1..=4",
        )
    }
}

impl Struct for KdfParams {
    type Schema = identity_capnp::kdf_params::Owned;

    fn read(r: identity_capnp::kdf_params::Reader<'_>) -> Result<Self, DecodeError> {
        let kdf = match r.get_kdf() {
            Ok(identity_capnp::Kdf::Argon2id) => Kdf::Argon2id,
            Err(_) => return Err(DecodeError::UnknownVariant("kdf")),
        };
        let params = Self {
            kdf,
            memory_kib: r.get_memory_kib(),
            iterations: r.get_iterations(),
            parallelism: r.get_parallelism(),
            salt: codec::id("salt", r.get_salt())?,
        };
        params.validate()?;
        Ok(params)
    }

    fn write(&self, mut b: identity_capnp::kdf_params::Builder<'_>) {
        b.set_kdf(match self.kdf {
            Kdf::Argon2id => identity_capnp::Kdf::Argon2id,
        });
        b.set_memory_kib(self.memory_kib);
        b.set_iterations(self.iterations);
        b.set_parallelism(self.parallelism);
        b.set_salt(&self.salt);
    }
}

/// `EncryptedIdentityBundle`: the export file format, an [`IdentityBundle`]
/// sealed under a passphrase-derived key. AAD: the canonical bytes of the
/// [`KdfParams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedIdentityBundle {
    /// Format version ([`ENCRYPTED_BUNDLE_VERSION`]).
    pub version: u16,
    /// How the key was derived.
    pub kdf_params: KdfParams,
    /// The AEAD nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Canonical bytes of the bundle, encrypted, tag appended (16 bytes ..=
    /// [`MAX_BUNDLE_CIPHERTEXT_BYTES`]).
    pub ciphertext: Vec<u8>,
}

impl EncryptedIdentityBundle {
    /// Seals `bundle` under `passphrase` (UTF-8, NFC). `params.salt` and
    /// `nonce` must be fresh random bytes for every export.
    pub fn seal(
        bundle: &IdentityBundle,
        passphrase: &[u8],
        params: KdfParams,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Self, IdentityError> {
        params.validate()?;
        let plain = bundle.canonical_bytes()?;
        if plain.len() > MAX_BUNDLE_BYTES {
            return Err(ContentError::TooLarge {
                what: "bundle",
                max: MAX_BUNDLE_BYTES,
                got: plain.len(),
            }
            .into());
        }
        let aad = codec::canonical_of(&params);
        let ciphertext = passphrase::seal(passphrase, &params.argon2(), &nonce, &aad, &plain)?;
        Ok(Self {
            version: ENCRYPTED_BUNDLE_VERSION,
            kdf_params: params,
            nonce,
            ciphertext,
        })
    }

    /// Opens the bundle with `passphrase`. A wrong passphrase and a tampered
    /// file are the same error
    /// ([`WrongPassphraseOrCorrupt`](crate::passphrase::PassphraseError::WrongPassphraseOrCorrupt)).
    pub fn open(&self, passphrase: &[u8]) -> Result<IdentityBundle, IdentityError> {
        self.kdf_params.validate()?;
        let aad = codec::canonical_of(&self.kdf_params);
        let plain = passphrase::open(
            passphrase,
            &self.kdf_params.argon2(),
            &self.nonce,
            &aad,
            &self.ciphertext,
        )?;
        Ok(IdentityBundle::from_canonical(&plain)?)
    }

    /// The file bytes: a standard framed Cap'n Proto message (segment table,
    /// no code byte).
    pub fn to_file_bytes(&self) -> Vec<u8> {
        capnp::serialize::write_message_to_words(&codec::build(self))
    }

    /// Parses file bytes (at most [`MAX_BUNDLE_FILE_BYTES`], nothing after the
    /// message) with the protocol's reader limits.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_BUNDLE_FILE_BYTES {
            return Err(DecodeError::TooLong {
                field: "file",
                max: MAX_BUNDLE_FILE_BYTES,
                got: bytes.len(),
            });
        }
        let mut rest = bytes;
        let msg = capnp::serialize::read_message(&mut rest, reader_options(bytes.len() / 8))?;
        if !rest.is_empty() {
            return Err(DecodeError::Invalid {
                field: "file",
                reason: "trailing bytes after the message",
            });
        }
        Self::read(msg.get_root()?)
    }
}

impl Struct for EncryptedIdentityBundle {
    type Schema = identity_capnp::encrypted_identity_bundle::Owned;

    fn read(r: identity_capnp::encrypted_identity_bundle::Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.get_version();
        if version != ENCRYPTED_BUNDLE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                got: version,
                min: ENCRYPTED_BUNDLE_VERSION,
                max: ENCRYPTED_BUNDLE_VERSION,
            });
        }
        if !r.has_kdf_params() {
            return Err(DecodeError::Missing("kdfParams"));
        }
        let kdf_params = KdfParams::read(r.get_kdf_params()?)?;
        let nonce = codec::id("nonce", r.get_nonce())?;
        let ciphertext = codec::nonempty_bytes(
            "ciphertext",
            r.get_ciphertext(),
            MAX_BUNDLE_CIPHERTEXT_BYTES,
        )?;
        if ciphertext.len() < TAG_LEN {
            return Err(DecodeError::Invalid {
                field: "ciphertext",
                reason: "shorter than the 16-byte tag",
            });
        }
        Ok(Self {
            version,
            kdf_params,
            nonce,
            ciphertext,
        })
    }

    fn write(&self, mut b: identity_capnp::encrypted_identity_bundle::Builder<'_>) {
        b.set_version(self.version);
        self.kdf_params.write(b.reborrow().init_kdf_params());
        b.set_nonce(&self.nonce);
        b.set_ciphertext(&self.ciphertext);
    }
}
