//! Ingest rules for a received post: [`SyncPost`] and
//! [`SyncPost::validate`] (visibility authentication, delete and update
//! checks).

use distsoc_schema::content_capnp;

use crate::codec::{self, Struct};
use crate::error::DecodeError;
use crate::ids::PostId;
use rand_core::{CryptoRng, RngCore};

use crate::sign::{
    verify_each, BatchItem, PendingSignature, SignatureError, SigningKey, SIGNATURE_LEN,
};

use super::{
    bad_sig, IngestError, PostVisibility, SignedPost, SignedPostHeader, SignedVisibilityUpdate,
};

// ---------------------------------------------------------------------------
// SyncPost
// ---------------------------------------------------------------------------

/// `SyncPost`: a post with the metadata needed to store and read it.
///
/// The visibility is authenticated by the author in one of two ways: by
/// `visibility_signature` (the visibility chosen at creation, purpose
/// `post-visibility`), or, once the author changed it ("sync access list"), by
/// `visibility_update`, whose visibility `visibility` must equal. A relay that
/// receives an update applies it with [`SyncPost::apply_update`] and keeps
/// relaying the post with the update attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPost {
    /// The immutable post.
    pub post: SignedPost,
    /// Current visibility (absent on the wire = public).
    pub visibility: PostVisibility,
    /// Current header, if the author published one.
    pub header: Option<SignedPostHeader>,
    /// The author's signature over the visibility chosen at creation (see
    /// [`PostVisibility::signing_digest`]). Required for an encrypted post
    /// without `visibility_update`; ignored when `visibility_update` is
    /// present.
    pub visibility_signature: Option<[u8; SIGNATURE_LEN]>,
    /// The newest visibility update held, if the visibility changed after
    /// creation. `visibility` then equals its visibility.
    pub visibility_update: Option<SignedVisibilityUpdate>,
}

impl SyncPost {
    /// Assembles a sync post as its author: signs the visibility when it is
    /// encrypted.
    pub fn new(
        author_key: &SigningKey,
        post: SignedPost,
        visibility: PostVisibility,
        header: Option<SignedPostHeader>,
    ) -> Self {
        let visibility_signature = visibility
            .is_encrypted()
            .then(|| visibility.sign_for(&post.post_id(), author_key));
        Self {
            post,
            visibility,
            header,
            visibility_signature,
            visibility_update: None,
        }
    }

    /// The post's id.
    pub fn post_id(&self) -> PostId {
        self.post.post_id()
    }

    /// Validates a received sync post and returns its id:
    ///
    /// 1. the id equals `expected_id`, if given (`idMismatch`);
    /// 2. the post's signature verifies (`badSignature`);
    /// 3. the content is sealed iff the visibility is encrypted (`malformed`);
    /// 4. the visibility is the author's:
    ///    - with a `visibilityUpdate`: the update names this post
    ///      (`idMismatch`), is by the post's author (`unauthorized`), agrees
    ///      with the content (`malformed`), its visibility has the same
    ///      canonical bytes as `visibility` (`malformed`) and its signature
    ///      verifies (`badSignature`); `visibilitySignature` is then ignored;
    ///    - without one: an encrypted post carries a `visibilitySignature`
    ///      (`malformed`), and any `visibilitySignature` present verifies by
    ///      the author (`badSignature`);
    /// 5. the header, if any, is for this post id (`idMismatch`), by this
    ///    author (`unauthorized`) and verifies (`badSignature`).
    pub fn validate(&self, expected_id: Option<PostId>) -> Result<PostId, IngestError> {
        // Each signature is verified when its turn comes, so the first
        // failing check in the order above is the one reported.
        self.validate_deferred(expected_id)
            .finish(core::iter::empty())
    }

    /// [`validate`](Self::validate) with the signatures left to verify: all
    /// the other checks run now, in their order, and stop at the first
    /// failure; the signatures that come before it are collected. Verify
    /// them (one by one or, with many posts, together in one
    /// [`verify_each`](crate::sign::verify_each)) and pass the verdicts to
    /// [`DeferredValidation::finish`], which gives exactly the result of
    /// `validate`.
    pub fn validate_deferred(&self, expected_id: Option<PostId>) -> DeferredValidation<'_> {
        let mut signatures = Vec::new();
        let rest = self.checks_but_signatures(expected_id, &mut signatures);
        DeferredValidation { signatures, rest }
    }

    /// [`validate`](Self::validate) of each post, with the signatures of
    /// all of them verified together ([`verify_each`]: one batch equation
    /// when all are good). Each result is exactly what `validate(None)`
    /// gives for that post alone; `rng` supplies the batch coefficients.
    pub fn validate_all<'a, R: RngCore + CryptoRng + ?Sized>(
        posts: impl IntoIterator<Item = &'a SyncPost>,
        rng: &mut R,
    ) -> Vec<Result<PostId, IngestError>> {
        let deferred: Vec<DeferredValidation<'a>> = posts
            .into_iter()
            .map(|p| p.validate_deferred(None))
            .collect();
        let items: Vec<BatchItem<'_>> = deferred
            .iter()
            .flat_map(|d| d.signatures().map(PendingSignature::as_batch_item))
            .collect();
        let mut verdicts = verify_each(&items, rng).into_iter();
        deferred
            .into_iter()
            .map(|d| {
                // Take exactly this post's verdicts: `finish` stops at the
                // first failing one, and what it leaves belongs to no other
                // post.
                let n = d.signatures().len();
                let mine: Vec<_> = verdicts.by_ref().take(n).collect();
                d.finish(mine)
            })
            .collect()
    }

    fn checks_but_signatures<'a>(
        &'a self,
        expected_id: Option<PostId>,
        signatures: &mut Vec<(&'static str, PendingSignature<'a>)>,
    ) -> Result<PostId, IngestError> {
        let id = self.post.post_id();
        if let Some(expected) = expected_id {
            if expected != id {
                return Err(IngestError::IdMismatch {
                    what: "post",
                    expected: expected.0,
                    got: id.0,
                });
            }
        }
        signatures.push(("post", self.post.pending_signature()));
        let post = self.post.body();
        if post.is_sealed() != self.visibility.is_encrypted() {
            return Err(IngestError::Malformed {
                what: "syncPost",
                reason: "content must be sealed exactly when the visibility is encrypted",
            });
        }
        match (&self.visibility_update, &self.visibility_signature) {
            (Some(update), _) => {
                let body = update.body();
                body.applies_to(&self.post)?;
                if codec::canonical_of(&body.visibility) != codec::canonical_of(&self.visibility) {
                    return Err(IngestError::Malformed {
                        what: "visibility",
                        reason: "must equal the visibility of the visibilityUpdate",
                    });
                }
                signatures.push(("visibilityUpdate", update.pending_signature()));
            }
            (None, Some(sig)) => signatures.push((
                "visibility",
                self.visibility
                    .pending_signature_for(&id, &post.author, sig),
            )),
            (None, None) if self.visibility.is_encrypted() => {
                return Err(IngestError::Malformed {
                    what: "visibilitySignature",
                    reason: "an encrypted post needs a visibilitySignature or a visibilityUpdate",
                })
            }
            (None, None) => {}
        }
        if let Some(header) = &self.header {
            header.belongs_to(&id, &post.author)?;
            signatures.push(("header", header.pending_signature()));
        }
        Ok(id)
    }

    /// Applies a received visibility update to this (already validated) post,
    /// as a relay does before passing the post on:
    ///
    /// 1. the update names this post (`idMismatch`), is by its author
    ///    (`unauthorized`), agrees with the content (`malformed`) and its
    ///    signature verifies (`badSignature`);
    /// 2. it is not older than the update held (`stale`). An update with the
    ///    same `updatedAtMs` as the held one changes nothing: `Ok` if it is the
    ///    same update, `stale` otherwise (the first one seen is kept).
    ///
    /// On success `visibility` becomes the update's visibility, the update is
    /// stored in `visibility_update`, and `visibility_signature` (which signs
    /// the creation-time visibility and no longer matches) is cleared. On
    /// error nothing changes.
    pub fn apply_update(&mut self, update: SignedVisibilityUpdate) -> Result<(), IngestError> {
        update.validate_for(&self.post)?;
        if let Some(held) = &self.visibility_update {
            let (held_ms, got_ms) = (held.body().updated_at_ms, update.body().updated_at_ms);
            if got_ms == held_ms && held.bytes() == update.bytes() {
                return Ok(());
            }
            if got_ms <= held_ms {
                return Err(IngestError::Stale {
                    what: "visibilityUpdate",
                    held: held_ms,
                    got: got_ms,
                });
            }
        }
        self.visibility = update.body().visibility.clone();
        self.visibility_signature = None;
        self.visibility_update = Some(update);
        Ok(())
    }
}

/// A [`SyncPost::validate_deferred`] in progress: the signatures to verify,
/// in the order `validate` checks them, and the outcome of every other
/// check.
#[derive(Debug)]
pub struct DeferredValidation<'a> {
    signatures: Vec<(&'static str, PendingSignature<'a>)>,
    rest: Result<PostId, IngestError>,
}

impl<'a> DeferredValidation<'a> {
    /// The signatures to verify, in order.
    pub fn signatures(&self) -> impl ExactSizeIterator<Item = &PendingSignature<'a>> {
        self.signatures.iter().map(|(_, s)| s)
    }

    /// The result of [`SyncPost::validate`], given the verdicts of
    /// [`signatures`](Self::signatures) in their order: the first failing
    /// signature, else the first failure of the other checks, else the id.
    /// A signature without a verdict (`verdicts` ran out) is verified here.
    pub fn finish(
        self,
        verdicts: impl IntoIterator<Item = Result<(), SignatureError>>,
    ) -> Result<PostId, IngestError> {
        let mut verdicts = verdicts.into_iter();
        for (what, signature) in &self.signatures {
            let verdict = verdicts.next().unwrap_or_else(|| signature.verify());
            verdict.map_err(bad_sig(what))?;
        }
        self.rest
    }
}

impl Struct for SyncPost {
    type Schema = content_capnp::sync_post::Owned;

    fn read(r: content_capnp::sync_post::Reader<'_>) -> Result<Self, DecodeError> {
        if !r.has_post() {
            return Err(DecodeError::Missing("post"));
        }
        Ok(Self {
            post: SignedPost::read(r.get_post()?)?,
            visibility: if r.has_visibility() {
                PostVisibility::read(r.get_visibility()?)?
            } else {
                PostVisibility::Public
            },
            header: if r.has_header() {
                Some(SignedPostHeader::read(r.get_header()?)?)
            } else {
                None
            },
            visibility_signature: codec::opt_id(
                "visibilitySignature",
                r.get_visibility_signature(),
            )?,
            visibility_update: if r.has_visibility_update() {
                Some(SignedVisibilityUpdate::read(r.get_visibility_update()?)?)
            } else {
                None
            },
        })
    }

    fn write(&self, mut b: content_capnp::sync_post::Builder<'_>) {
        self.post.write(b.reborrow().init_post());
        self.visibility.write(b.reborrow().init_visibility());
        if let Some(h) = &self.header {
            h.write(b.reborrow().init_header());
        }
        if let Some(sig) = &self.visibility_signature {
            b.set_visibility_signature(sig);
        }
        if let Some(u) = &self.visibility_update {
            u.write(b.reborrow().init_visibility_update());
        }
    }
}
