//! Post visibility and sealing: [`PostVisibility`], [`EncryptedVisibility`],
//! the wrapped-key lists, and sealing and opening encrypted posts
//! ([`seal_post`], [`open_post`]).

use distsoc_schema::content_capnp;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::codec::{self, len32, Struct};
use crate::envelope::{self, Cek, WrappedKey, NONCE_LEN, WRAPPED_LEN};
use crate::error::DecodeError;
use crate::ids::{PostId, PostingId};
use crate::limits::MAX_RECIPIENTS;
use crate::messages::common::VisibilityHint;
use crate::sign::{PendingSignature, Purpose, SignatureError, SigningKey, SIGNATURE_LEN};

use super::{ContentError, Post, PostBody, PostContent, SignedPost};

// ---------------------------------------------------------------------------
// Visibility
// ---------------------------------------------------------------------------

impl Struct for WrappedKey {
    type Schema = content_capnp::wrapped_key::Owned;

    fn read(r: content_capnp::wrapped_key::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            recipient: codec::id("recipient", r.get_recipient())?,
            wrapped: codec::id::<WRAPPED_LEN>("wrapped", r.get_wrapped())?,
        })
    }

    fn write(&self, mut b: content_capnp::wrapped_key::Builder<'_>) {
        b.set_recipient(&self.recipient);
        b.set_wrapped(&self.wrapped);
    }
}

/// Reads a `List(WrappedKey)` of at most `max` entries.
pub(crate) fn read_wrapped_keys(
    field: &'static str,
    l: capnp::Result<capnp::struct_list::Reader<'_, content_capnp::wrapped_key::Owned>>,
    max: usize,
) -> Result<Vec<WrappedKey>, DecodeError> {
    codec::list(field, l, max, WrappedKey::read)
}

/// Writes a `List(WrappedKey)`.
pub(crate) fn write_wrapped_keys(
    mut l: capnp::struct_list::Builder<'_, content_capnp::wrapped_key::Owned>,
    keys: &[WrappedKey],
) {
    for (i, k) in keys.iter().enumerate() {
        k.write(l.reborrow().get(i as u32));
    }
}

/// `EncryptedVisibility`: the key envelope of an encrypted post.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptedVisibility {
    /// The envelope's ephemeral X25519 public key.
    pub ephemeral_key: [u8; 32],
    /// One wrapped CEK per recipient (at most [`MAX_RECIPIENTS`], which keeps
    /// the canonical `PostVisibility` within 256 KiB).
    pub recipients: Vec<WrappedKey>,
}

impl EncryptedVisibility {
    /// Wraps `cek` for `recipients` with the ephemeral secret `eph_secret`
    /// (32 fresh random bytes per envelope).
    pub fn wrap(
        cek: &Cek,
        eph_secret: &[u8; 32],
        recipients: &[PostingId],
    ) -> Result<Self, ContentError> {
        if recipients.len() > MAX_RECIPIENTS {
            return Err(ContentError::TooMany {
                what: "recipients",
                max: MAX_RECIPIENTS,
                got: recipients.len(),
            });
        }
        let ids: Vec<[u8; 32]> = recipients.iter().map(|r| r.0).collect();
        let (ephemeral_key, recipients) = envelope::wrap_for_recipients(cek, eph_secret, &ids)?;
        Ok(Self {
            ephemeral_key,
            recipients,
        })
    }

    /// Recovers the CEK with our ed25519 seed (or a group's seed).
    pub fn unwrap_cek(&self, my_seed: &[u8; 32]) -> Result<Cek, ContentError> {
        Ok(envelope::unwrap_cek(
            my_seed,
            &self.ephemeral_key,
            &self.recipients,
        )?)
    }

    /// Whether `id` has a wrapped key here.
    pub fn is_recipient(&self, id: &PostingId) -> bool {
        self.recipients.iter().any(|w| w.recipient == id.0)
    }
}

impl Struct for EncryptedVisibility {
    type Schema = content_capnp::encrypted_visibility::Owned;

    fn read(r: content_capnp::encrypted_visibility::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            ephemeral_key: codec::id("ephemeralKey", r.get_ephemeral_key())?,
            recipients: read_wrapped_keys("recipients", r.get_recipients(), MAX_RECIPIENTS)?,
        })
    }

    fn write(&self, mut b: content_capnp::encrypted_visibility::Builder<'_>) {
        b.set_ephemeral_key(&self.ephemeral_key);
        write_wrapped_keys(b.init_recipients(len32(&self.recipients)), &self.recipients);
    }
}

/// `PostVisibility`: who can read a post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PostVisibility {
    /// Anyone; the content is plain.
    #[default]
    Public,
    /// Holders of a wrapped key; the content is sealed.
    Encrypted(EncryptedVisibility),
}

impl PostVisibility {
    /// Whether the visibility is encrypted.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, PostVisibility::Encrypted(_))
    }

    /// The matching visibility hint.
    pub fn hint(&self) -> VisibilityHint {
        if self.is_encrypted() {
            VisibilityHint::Encrypted
        } else {
            VisibilityHint::Public
        }
    }

    /// The wrapped keys (empty for public).
    pub fn recipients(&self) -> &[WrappedKey] {
        match self {
            PostVisibility::Public => &[],
            PostVisibility::Encrypted(e) => &e.recipients,
        }
    }

    /// What a `SyncPost.visibilitySignature` signs:
    /// `BLAKE3-256(postId ‖ canonical bytes of this visibility)`.
    pub fn signing_digest(&self, post_id: &PostId) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(post_id.as_bytes());
        h.update(&codec::canonical_of(self));
        *h.finalize().as_bytes()
    }

    /// The author's `visibilitySignature` for this visibility of `post_id`
    /// (purpose `post-visibility`). Only for the visibility chosen at
    /// creation; a later change travels as a [`SignedVisibilityUpdate`](super::SignedVisibilityUpdate).
    pub fn sign_for(&self, post_id: &PostId, author_key: &SigningKey) -> [u8; SIGNATURE_LEN] {
        author_key.sign(Purpose::PostVisibility, &self.signing_digest(post_id))
    }

    /// Verifies a `visibilitySignature` by `author` (purpose
    /// `post-visibility`).
    pub fn verify_for(
        &self,
        post_id: &PostId,
        author: &PostingId,
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), SignatureError> {
        self.pending_signature_for(post_id, author, signature)
            .verify()
    }

    /// The check [`verify_for`](Self::verify_for) makes, to verify later or
    /// in a batch.
    pub fn pending_signature_for(
        &self,
        post_id: &PostId,
        author: &PostingId,
        signature: &[u8; SIGNATURE_LEN],
    ) -> PendingSignature<'static> {
        PendingSignature {
            public: author.0,
            purpose: Purpose::PostVisibility,
            message: std::borrow::Cow::Owned(self.signing_digest(post_id).to_vec()),
            signature: *signature,
        }
    }
}

impl Struct for PostVisibility {
    type Schema = content_capnp::post_visibility::Owned;

    fn read(r: content_capnp::post_visibility::Reader<'_>) -> Result<Self, DecodeError> {
        use content_capnp::post_visibility::Which;
        match r
            .which()
            .map_err(|_| DecodeError::UnknownVariant("visibility"))?
        {
            Which::Public(()) => Ok(PostVisibility::Public),
            Which::Encrypted(e) => Ok(PostVisibility::Encrypted(EncryptedVisibility::read(e?)?)),
        }
    }

    fn write(&self, mut b: content_capnp::post_visibility::Builder<'_>) {
        match self {
            PostVisibility::Public => b.set_public(()),
            PostVisibility::Encrypted(e) => e.write(b.init_encrypted()),
        }
    }
}

/// Seals `body` as a new encrypted post by `author_key` for `recipients`
/// (1..=[`MAX_RECIPIENTS`] posting ids, node ids or group ids; include your
/// own id to read your post back). Draws, in this order, the CEK (32 bytes),
/// the content nonce (12) and the ephemeral secret (32) from `rng`.
///
/// Returns the signed post and its visibility; sign the visibility with
/// [`PostVisibility::sign_for`] (or build the [`SyncPost`](super::SyncPost) with
/// [`SyncPost::new`](super::SyncPost::new)).
pub fn seal_post<R: RngCore + CryptoRng + ?Sized>(
    author_key: &SigningKey,
    created_at_ms: u64,
    body: &PostBody,
    recipients: &[PostingId],
    rng: &mut R,
) -> Result<(SignedPost, PostVisibility), ContentError> {
    let cek = Cek::generate(rng);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut eph = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(eph.as_mut());
    let visibility = EncryptedVisibility::wrap(&cek, &eph, recipients)?;
    let post = Post::new_sealed(
        PostingId(author_key.public()),
        created_at_ms,
        body,
        &cek,
        nonce,
    )?;
    Ok((
        post.sign(author_key)?,
        PostVisibility::Encrypted(visibility),
    ))
}

/// Reads a post with our seed (or a group seed for a post to a group): a
/// public post's body as is, an encrypted one's after unwrapping the CEK
/// addressed to us. Content and visibility must agree.
pub fn open_post(
    my_seed: &[u8; 32],
    post: &SignedPost,
    visibility: &PostVisibility,
) -> Result<PostBody, ContentError> {
    match (&post.body().content, visibility) {
        (PostContent::Plain(body), PostVisibility::Public) => Ok(body.clone()),
        (PostContent::Sealed(_), PostVisibility::Encrypted(e)) => {
            post.body().open(&e.unwrap_cek(my_seed)?)
        }
        _ => Err(ContentError::VisibilityMismatch),
    }
}
