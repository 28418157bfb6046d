//! POST: posts pushed to the target (`PushPost`), their signatures, ids,
//! canonical bytes and limits (schema/README.md §3, §4, §10), plus the
//! content fixtures and helpers the SIG, SYNC and NODE areas share.
//!
//! **Fixture identities.** The suite signs posts with a few fixed posting
//! keys ([`fixture_ids`]). A target that accepts `PushPost` only from
//! authors it follows (a user node: `PushPost` is delivery to an approved
//! audience) answers `unauthorized` for them unless it follows these ids;
//! the post cases then accept `unauthorized` and the positive ones are
//! SKIPPED. Our node test follows them.
//!
//! Every case first pushes a valid post by the same author (the baseline):
//! if the target accepts it, a variant that differs only by one defect must
//! be refused with the defect's code.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use distsoc_protocol::codec;
use distsoc_protocol::ids::PostingId;
use distsoc_protocol::messages::content::{Post, PostVisibility};
use distsoc_schema::{content_capnp, files_capnp, social_capnp};
use sha2::{Digest, Sha512};

use super::def;
pub(crate) use crate::refcrypto::signing_input;
use crate::refcrypto::strict_verify;
use crate::suite::client::Reply;
use crate::suite::ctx::{
    error_words, expect_code, expect_error, now_ms, reply_frame, CaseError, Ctx, Outcome, Session,
};
use crate::suite::frame::RawFrame;
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::{self, code, PROTOCOL_VERSION};

// ---- identities and signing -------------------------------------------------

/// Number of seeded fixture authors.
const SEEDED: u8 = 4;

/// Seed of fixture author `n`: BLAKE3("distsoc-conformance fixture author" ‖ n).
#[must_use]
pub fn fixture_seed(n: u8) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"distsoc-conformance fixture author");
    h.update(&[n]);
    *h.finalize().as_bytes()
}

/// The posting ids the suite signs content with: the public keys of
/// [`fixture_seed`] 0..4 and one mixed-order key (a valid key plus an
/// 8-torsion component, which the strict rule of §4 accepts). A node that
/// accepts `PushPost` only from followed authors must follow these for the
/// positive POST/SIG/SYNC/NODE cases to run.
#[must_use]
pub fn fixture_ids() -> Vec<[u8; 32]> {
    let mut v: Vec<[u8; 32]> = (0..SEEDED).map(|n| Signer::fixture(n).public()).collect();
    v.push(Signer::mixed().public());
    v
}

/// A key the suite signs with.
#[derive(Clone, Debug)]
pub(crate) enum Signer {
    /// An ordinary Ed25519 key from its seed (RFC 8032 signing).
    Seed([u8; 32]),
    /// Secret scalar `a`, public key `[a]B + T` (T of order 8).
    Mixed { a: Scalar, public: [u8; 32] },
}

impl Signer {
    pub(crate) fn fixture(n: u8) -> Self {
        Signer::Seed(fixture_seed(n))
    }

    pub(crate) fn mixed() -> Self {
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&Sha512::digest(b"distsoc-conformance mixed-order key"));
        let a = Scalar::from_bytes_mod_order_wide(&wide);
        let point = ED25519_BASEPOINT_POINT * a + EIGHT_TORSION[1];
        Signer::Mixed {
            a,
            public: point.compress().to_bytes(),
        }
    }

    pub(crate) fn public(&self) -> [u8; 32] {
        match self {
            Signer::Seed(seed) => ed25519_dalek::SigningKey::from_bytes(seed)
                .verifying_key()
                .to_bytes(),
            Signer::Mixed { public, .. } => *public,
        }
    }

    /// Signs exactly `input` (no domain prefix added).
    pub(crate) fn sign_raw(&self, input: &[u8]) -> [u8; 64] {
        match self {
            Signer::Seed(seed) => {
                use ed25519_dalek::Signer as _;
                ed25519_dalek::SigningKey::from_bytes(seed)
                    .sign(input)
                    .to_bytes()
            }
            Signer::Mixed { a, public } => {
                let r = wide_scalar(&[b"nonce", a.as_bytes(), input]);
                let big_r = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
                let k = wide_scalar(&[&big_r, public, input]);
                let s = r + k * a;
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&big_r);
                sig[32..].copy_from_slice(s.as_bytes());
                sig
            }
        }
    }

    /// Signs `message` for `purpose` (schema/README.md §4).
    pub(crate) fn sign(&self, purpose: &str, message: &[u8]) -> [u8; 64] {
        self.sign_raw(&signing_input(purpose, message))
    }
}

fn wide_scalar(parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Independent strict verification (the offline vector checker's rule).
pub(crate) fn verify(
    public: &[u8],
    purpose: &str,
    message: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    let public: [u8; 32] = public
        .try_into()
        .map_err(|_| format!("key of {} bytes", public.len()))?;
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| format!("signature of {} bytes", sig.len()))?;
    strict_verify(&public, &signing_input(purpose, message), &sig)
        .map_err(|e| format!("{purpose} signature does not verify ({e})"))
}

// ---- canonical bytes ------------------------------------------------------------

/// Canonical bytes of a public `Post` by `author` (built with the schema
/// builder through the protocol crate; pinned by the canonical vectors).
pub(crate) fn post_bytes(author: &[u8; 32], created_at_ms: u64, text: &str) -> Vec<u8> {
    codec::canonical_of(&Post::new_public(
        PostingId(*author),
        created_at_ms,
        text,
        Vec::new(),
    ))
}

/// Canonical bytes (no segment table) of a struct built with the schema
/// builder `f`.
pub(crate) fn canonical<T, F>(f: F) -> Vec<u8>
where
    T: capnp::traits::Owned,
    F: FnOnce(T::Builder<'_>),
{
    let mut m = capnp::message::Builder::new_default();
    f(m.init_root::<T::Builder<'_>>());
    match m.into_reader().canonicalize() {
        Ok(w) => capnp::Word::words_to_bytes(&w).to_vec(),
        Err(_) => Vec::new(),
    }
}

/// The words of canonical bytes (no segment table).
/// Reads canonical bytes (one segment, no segment table) as a `T` root.
pub(crate) fn read_canonical<T, R>(
    bytes: &[u8],
    f: impl FnOnce(T::Reader<'_>) -> Result<R, capnp::Error>,
) -> Result<R, String>
where
    T: capnp::traits::Owned,
{
    let words: Vec<capnp::Word> = words_of(bytes)
        .into_iter()
        .map(|w| {
            let b = w.to_le_bytes();
            capnp::word(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7])
        })
        .collect();
    let seg = capnp::Word::words_to_bytes(&words);
    let segments: &[&[u8]] = &[seg];
    let msg = capnp::message::Reader::new(
        capnp::message::SegmentArray::new(segments),
        capnp::message::ReaderOptions::new(),
    );
    let root: T::Reader<'_> = msg.get_root().map_err(|e| e.to_string())?;
    f(root).map_err(|e| e.to_string())
}

fn words_of(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect()
}

fn bytes_of(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// `bytes` (a canonical struct) with its root's data section zero-extended
/// to `index + 1` words and word `index` set to `extra`. With `index` past
/// every known field of the schema, a nonzero `extra` is the canonical
/// encoding of a newer schema's struct with one more field; a zero one is
/// not canonical (an untruncated data section).
pub(crate) fn with_data_word(bytes: &[u8], index: usize, extra: u64) -> Vec<u8> {
    let words = words_of(bytes);
    let Some((mut d, p, rest)) = wire::split_root(&words) else {
        return bytes.to_vec();
    };
    if d.len() <= index {
        d.resize(index + 1, 0);
    }
    d[index] = extra;
    let mut out = vec![wire::sp(0, d.len() as u16, p.len() as u16)];
    out.extend_from_slice(&d);
    out.extend_from_slice(&p);
    out.extend_from_slice(&rest);
    bytes_of(&out)
}

/// Data words of `Post` in the current schema (createdAtMs, the union tag).
pub(crate) const POST_DATA_WORDS: usize = 2;

// ---- SyncPost / PushPost frames ----------------------------------------------------

/// The parts of a `SyncPost`, as raw bytes so that any of them can be broken.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sp {
    pub post: Vec<u8>,
    pub sig: Vec<u8>,
    pub visibility: Option<PostVisibility>,
    pub vis_sig: Vec<u8>,
    pub header: Option<(Vec<u8>, Vec<u8>)>,
    pub vis_update: Option<(Vec<u8>, Vec<u8>)>,
}

impl Sp {
    /// A valid public post by `signer` with `text`.
    pub(crate) fn public(signer: &Signer, text: &str) -> Sp {
        let post = post_bytes(&signer.public(), now_ms(), text);
        let sig = signer.sign("post", &post).to_vec();
        Sp {
            post,
            sig,
            ..Sp::default()
        }
    }

    /// Its PostId (BLAKE3 of the post bytes).
    pub(crate) fn id(&self) -> [u8; 32] {
        *blake3::hash(&self.post).as_bytes()
    }

    pub(crate) fn write(&self, mut b: content_capnp::sync_post::Builder<'_>) {
        {
            let mut p = b.reborrow().init_post();
            p.set_post(&self.post);
            p.set_signature(&self.sig);
        }
        if let Some(v) = &self.visibility {
            codec::Struct::write(v, b.reborrow().init_visibility());
        }
        if let Some((h, s)) = &self.header {
            let mut hb = b.reborrow().init_header();
            hb.set_header(h);
            hb.set_signature(s);
        }
        if !self.vis_sig.is_empty() {
            b.set_visibility_signature(&self.vis_sig);
        }
        if let Some((u, s)) = &self.vis_update {
            let mut ub = b.reborrow().init_visibility_update();
            ub.set_update(u);
            ub.set_signature(s);
        }
    }

    /// A PushPost frame carrying it.
    pub(crate) fn push(&self) -> Vec<u8> {
        wire::build::<social_capnp::push_post::Owned, _>(code::PUSH_POST, |mut b| {
            b.set_version(PROTOCOL_VERSION);
            self.write(b.init_post());
        })
    }
}

/// A text unique to this case run.
pub(crate) fn text(ctx: &mut Ctx, what: &str) -> String {
    format!("conformance {what} {}", hex::encode(&ctx.random32()[..8]))
}

/// A FileRequest for a post id.
pub(crate) fn file_post(id: &[u8]) -> Vec<u8> {
    crate::suite::ctx::req::file_post(PROTOCOL_VERSION, id)
}

/// A FileRequest for a blob id.
pub(crate) fn file_blob(id: &[u8]) -> Vec<u8> {
    wire::build::<files_capnp::file_request::Owned, _>(code::FILE_REQUEST, |mut b| {
        b.set_version(PROTOCOL_VERSION);
        b.set_blob(id);
    })
}

// ---- reading posts back ------------------------------------------------------------

/// A post read from a reply with the schema readers.
#[derive(Clone, Debug, Default)]
pub(crate) struct GotPost {
    pub post: Vec<u8>,
    pub sig: Vec<u8>,
    pub author: Vec<u8>,
    /// `None` = public; else the recipients.
    pub recipients: Option<Vec<Vec<u8>>>,
    pub sealed: bool,
    pub visibility_canonical: Vec<u8>,
    pub vis_sig: Vec<u8>,
    pub has_update: bool,
}

impl GotPost {
    pub(crate) fn id(&self) -> [u8; 32] {
        *blake3::hash(&self.post).as_bytes()
    }

    /// Reads a `SyncPost`.
    pub(crate) fn read(r: content_capnp::sync_post::Reader<'_>) -> Result<GotPost, String> {
        let e = |e: capnp::Error| e.to_string();
        let sp = r.get_post().map_err(e)?;
        let post = sp.get_post().map_err(e)?.to_vec();
        let sig = sp.get_signature().map_err(e)?.to_vec();
        let (author, sealed) = read_canonical::<content_capnp::post::Owned, _>(&post, |p| {
            let sealed = matches!(
                p.get_content().which(),
                Ok(content_capnp::post::content::Sealed(_))
            );
            Ok((p.get_author()?.to_vec(), sealed))
        })?;
        let mut recipients = None;
        let mut visibility_canonical = Vec::new();
        if r.has_visibility() {
            let v = r.get_visibility().map_err(e)?;
            if let Ok(content_capnp::post_visibility::Encrypted(enc)) = v.which() {
                let enc = enc.map_err(e)?;
                let mut list = Vec::new();
                for w in enc.get_recipients().map_err(e)?.iter() {
                    list.push(w.get_recipient().map_err(e)?.to_vec());
                }
                recipients = Some(list);
            }
            let mut m = capnp::message::Builder::new_default();
            m.set_root_canonical(v).map_err(e)?;
            visibility_canonical = m
                .get_segments_for_output()
                .first()
                .map(|seg| seg.to_vec())
                .unwrap_or_default();
        }
        Ok(GotPost {
            post,
            sig,
            author,
            recipients,
            sealed,
            visibility_canonical,
            vis_sig: r.get_visibility_signature().map_err(e)?.to_vec(),
            has_update: r.has_visibility_update(),
        })
    }

    /// The independent checks of a returned post: PostId from the bytes,
    /// the `post` signature by its author, the visibility signature when
    /// it authenticates the visibility, content/visibility agreement.
    pub(crate) fn check(&self) -> Result<(), String> {
        verify(&self.author, "post", &self.post, &self.sig)?;
        if self.sealed != self.recipients.is_some() {
            return Err("content sealed iff visibility encrypted is violated".into());
        }
        if !self.has_update && (self.recipients.is_some() || !self.vis_sig.is_empty()) {
            let mut digest = blake3::Hasher::new();
            digest.update(&self.id());
            digest.update(&self.visibility_canonical);
            verify(
                &self.author,
                "post-visibility",
                digest.finalize().as_bytes(),
                &self.vis_sig,
            )?;
        }
        Ok(())
    }
}

/// A parsed PullSyncResponse.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pulled {
    pub posts: Vec<GotPost>,
    pub next_seq: u64,
    pub more: bool,
    pub profiles: Vec<(Vec<u8>, Vec<u8>)>,
    /// `deletes`: (canonical `DeleteRecordBody`, signature).
    pub deletes: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Pulled {
    pub(crate) fn has(&self, id: &[u8; 32]) -> bool {
        self.posts.iter().any(|p| &p.id() == id)
    }
}

/// A PullSyncRequest frame.
pub(crate) fn pull_frame(ids: &[[u8; 32]], since: u64, limit: u16) -> Vec<u8> {
    wire::build::<social_capnp::pull_sync_request::Owned, _>(code::PULL_SYNC_REQUEST, |mut b| {
        b.set_version(PROTOCOL_VERSION);
        b.set_since_seq(since);
        b.set_limit(limit);
        let mut l = b.init_ids(ids.len() as u32);
        for (i, id) in ids.iter().enumerate() {
            l.set(i as u32, id);
        }
    })
}

/// Reads a PullSyncResponse reply.
pub(crate) fn read_pull(reply: &Reply) -> Result<Pulled, String> {
    let f = expect_code(reply, code::PULL_SYNC_RESPONSE)?;
    read_pull_frame(&f)
}

fn read_pull_frame(f: &RawFrame) -> Result<Pulled, String> {
    let e = |e: capnp::Error| e.to_string();
    let reader = f.reader();
    let r: social_capnp::pull_sync_response::Reader<'_> = reader.get_root().map_err(e)?;
    let mut posts = Vec::new();
    for p in r.get_posts().map_err(e)?.iter() {
        posts.push(GotPost::read(p)?);
    }
    let mut profiles = Vec::new();
    for p in r.get_profiles().map_err(e)?.iter() {
        profiles.push((
            p.get_profile().map_err(e)?.to_vec(),
            p.get_signature().map_err(e)?.to_vec(),
        ));
    }
    let mut deletes = Vec::new();
    for d in r.get_deletes().map_err(e)?.iter() {
        deletes.push((
            d.get_record().map_err(e)?.to_vec(),
            d.get_signature().map_err(e)?.to_vec(),
        ));
    }
    Ok(Pulled {
        posts,
        next_seq: r.get_next_seq(),
        more: r.get_more(),
        profiles,
        deletes,
    })
}

/// One pull on `s`.
pub(crate) async fn pull(
    s: &Session,
    ids: &[[u8; 32]],
    since: u64,
    limit: u16,
) -> Result<Pulled, String> {
    read_pull(&s.request(&pull_frame(ids, since, limit)).await)
}

/// Pulls every page after `since` (at most 64 pages); the posts and the
/// final cursor.
pub(crate) async fn pull_all(s: &Session, ids: &[[u8; 32]], since: u64) -> Result<Pulled, String> {
    pull_up_to(s, ids, since, 0, usize::MAX).await
}

/// Like [`pull_all`], with pages of `page_limit` posts (0 = the target's
/// default), stopping after the page that brings the count to at least
/// `max_posts` (a bound on the work of cases whose answer grows with what
/// earlier runs left on the target).
pub(crate) async fn pull_up_to(
    s: &Session,
    ids: &[[u8; 32]],
    since: u64,
    page_limit: u16,
    max_posts: usize,
) -> Result<Pulled, String> {
    let mut all = Pulled {
        next_seq: since,
        ..Pulled::default()
    };
    for _ in 0..64 {
        let page = pull(s, ids, all.next_seq, page_limit).await?;
        if page.next_seq < all.next_seq {
            return Err(format!(
                "nextSeq went back from {} to {}",
                all.next_seq, page.next_seq
            ));
        }
        all.posts.extend(page.posts);
        all.profiles.extend(page.profiles);
        all.deletes.extend(page.deletes);
        all.next_seq = page.next_seq;
        if !page.more || all.posts.len() >= max_posts {
            return Ok(all);
        }
    }
    Ok(all)
}

/// Reads the `StoredFile` post of a FileResponse reply.
pub(crate) fn read_file_post(reply: &Reply) -> Result<GotPost, String> {
    let f = expect_code(reply, code::FILE_RESPONSE)?;
    let e = |e: capnp::Error| e.to_string();
    let reader = f.reader();
    let r: files_capnp::file_response::Reader<'_> = reader.get_root().map_err(e)?;
    match r
        .which()
        .map_err(|_| "unknown FileResponse arm".to_string())?
    {
        files_capnp::file_response::Post(p) => GotPost::read(p.map_err(e)?.get_post().map_err(e)?),
        files_capnp::file_response::Blob(_) => Err("a blob instead of a post".into()),
    }
}

/// Reads the blob of a FileResponse reply.
pub(crate) fn read_file_blob(reply: &Reply) -> Result<Vec<u8>, String> {
    let f = expect_code(reply, code::FILE_RESPONSE)?;
    let e = |e: capnp::Error| e.to_string();
    let reader = f.reader();
    let r: files_capnp::file_response::Reader<'_> = reader.get_root().map_err(e)?;
    match r
        .which()
        .map_err(|_| "unknown FileResponse arm".to_string())?
    {
        files_capnp::file_response::Blob(b) => Ok(b.map_err(e)?.to_vec()),
        files_capnp::file_response::Post(_) => Err("a post instead of a blob".into()),
    }
}

// ---- the baseline and the shapes of a push case --------------------------------------

/// How the target treats a valid PushPost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    /// Acknowledged.
    Accepts,
    /// Refused as `unauthorized` (pushes only from an approved audience).
    Unauthorized,
}

/// Whether the reply is an Ack.
pub(crate) fn is_ack(reply: &Reply) -> Result<(), String> {
    expect_code(reply, code::ACK).map(|_| ())
}

/// Pushes a fresh valid post by `signer` on `s`: how the target treats
/// pushes by this author. `Err(outcome)` when that already decides the
/// case (a declared feature broken).
pub(crate) async fn baseline(
    ctx: &mut Ctx,
    s: &Session,
    signer: &Signer,
) -> Result<Result<Base, Outcome>, CaseError> {
    let t = text(ctx, "baseline");
    let reply = s.request(&Sp::public(signer, &t).push()).await;
    if is_ack(&reply).is_ok() {
        return Ok(Ok(Base::Accepts));
    }
    match expect_error(&reply, &["unauthorized", "unknownMessage"]) {
        Ok(e) if e.is("unauthorized") => Ok(Ok(Base::Unauthorized)),
        Ok(_) if !ctx.has_capability("audience/1") => Err(CaseError::Unsupported(
            "PushPost is answered unknownMessage and audience/1 is not declared".into(),
        )),
        Ok(e) => Ok(Err(Outcome::fail(
            "a valid PushPost (audience/1 declared) is accepted",
            format!("baseline push got {e}"),
        ))),
        Err(got) => Ok(Err(Outcome::fail(
            "a valid PushPost is answered Ack (or unauthorized from a non-audience author)",
            format!("baseline push got {got}"),
        ))),
    }
}

/// Connects and runs the baseline for `signer`; `Err` = the case is decided.
pub(crate) async fn session_with_base(
    ctx: &mut Ctx,
    signer: &Signer,
) -> Result<Result<(Session, Base), Outcome>, CaseError> {
    let s = ctx.connect().await?;
    match baseline(ctx, &s, signer).await? {
        Ok(b) => Ok(Ok((s, b))),
        Err(o) => {
            let usable = ctx.still_usable(&s).await;
            Ok(Err(o.and_usable(usable)))
        }
    }
}

/// A session on which pushes by `signer` are accepted, or the verdict.
pub(crate) async fn accepting_session(
    ctx: &mut Ctx,
    signer: &Signer,
) -> Result<Result<Session, Outcome>, CaseError> {
    match session_with_base(ctx, signer).await? {
        Ok((s, Base::Accepts)) => Ok(Ok(s)),
        Ok((_, Base::Unauthorized)) => Err(CaseError::Skipped(
            "the target accepts PushPost only from authors it follows; follow the suite's fixture ids (conformance/README.md) to run this case".into(),
        )),
        Err(o) => Ok(Err(o)),
    }
}

/// Pushes `frame` (a PushPost by `signer`, with one defect): the reply must
/// be an Error with one of `allowed` (or `unauthorized` where the target
/// refuses valid pushes by this author too), and the connection stays usable.
pub(crate) async fn push_refused(
    ctx: &mut Ctx,
    signer: &Signer,
    frame: &[u8],
    allowed: &[&str],
) -> Result<Outcome, CaseError> {
    let (s, base) = match session_with_base(ctx, signer).await? {
        Ok(x) => x,
        Err(o) => return Ok(o),
    };
    let mut allowed = allowed.to_vec();
    if base == Base::Unauthorized {
        allowed.push("unauthorized");
    }
    let reply = s.request(frame).await;
    let expected = format!(
        "{} (a valid push by the same author got {})",
        error_words(&allowed),
        if base == Base::Accepts {
            "Ack"
        } else {
            "unauthorized"
        }
    );
    let outcome = match expect_error(&reply, &allowed) {
        Ok(e) => Outcome::pass(&expected, e.to_string()),
        Err(got) => Outcome::fail(&expected, got),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

/// Pushes `frame` (a valid PushPost by `signer`): it must be acknowledged,
/// and where the role serves pull sync / file fetch, the post with id `id`
/// must come back byte-identical.
pub(crate) async fn push_accepted(
    ctx: &mut Ctx,
    signer: &Signer,
    frame: &[u8],
    post: &[u8],
    what: &str,
) -> Result<Outcome, CaseError> {
    let s = match accepting_session(ctx, signer).await? {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let expected = format!("{what}: Ack, then the post is served back byte-identical");
    let reply = s.request(frame).await;
    if let Err(got) = is_ack(&reply) {
        return Ok(Outcome::fail(expected, got).and_usable(ctx.still_usable(&s).await));
    }
    let id = *blake3::hash(post).as_bytes();
    let outcome = match served_back(ctx, &s, &signer.public(), &id, post).await {
        Ok(how) => Outcome::pass(&expected, format!("Ack; {how}")),
        Err(why) => Outcome::fail(&expected, format!("Ack; {why}")),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

/// Checks that the post `id` by `author` is served back with exactly
/// `post` as its bytes, by pull sync and by FileRequest where declared.
pub(crate) async fn served_back(
    ctx: &mut Ctx,
    s: &Session,
    author: &[u8; 32],
    id: &[u8; 32],
    post: &[u8],
) -> Result<String, String> {
    let mut how = Vec::new();
    if ctx.has_capability("pull-sync/1") {
        let got = pull_all(s, &[*author], 0).await?;
        match got.posts.iter().find(|p| &p.id() == id) {
            Some(p) if p.post == post => {
                p.check().map_err(|e| format!("pulled post: {e}"))?;
                how.push("returned by PullSync");
            }
            Some(_) => return Err("PullSync returned other bytes".into()),
            None => return Err("PullSync for its author does not return it".into()),
        }
    }
    if ctx.has_capability("files/1") {
        let p = read_file_post(&s.request(&file_post(id)).await)
            .map_err(|e| format!("FileRequest: {e}"))?;
        if p.post != post {
            return Err("FileRequest returned other bytes".into());
        }
        p.check().map_err(|e| format!("fetched post: {e}"))?;
        how.push("returned by FileRequest");
    }
    if how.is_empty() {
        how.push("no retrieval request declared");
    }
    Ok(how.join(", "))
}

// ---- the cases -------------------------------------------------------------------

const SIG_RULE: &str = "Signature = Ed25519 (RFC 8032, pure) over `\"distsoc/2/\" ‖ purpose ‖ 0x00 ‖ canonical bytes` [...] `post` signs `Post` with key `Post.author`.";
const CANON: &str = "A receiver rejects bytes that are not canonical (`nonCanonical`) and hashes and verifies the bytes **as received**, never a re-encoding of the decoded value.";
const POSTID: &str = "**PostId** = BLAKE3-256(canonical bytes of `Post`). Visibility and the header are not part of it.";
const TEXT_LIMIT: &str = "`PostBody.text`: The post text, UTF-8. At most 65536 bytes. [§10: list and text fields — stated on each field — tooLarge]";
const POST_LIMIT: &str =
    "| blob / post canonical bytes | 256 KiB | tooLarge | (SignedPost.post: At most 262144 bytes.)";
const IGNORE: &str = "Receivers **ignore unknown fields** (automatic in Cap'n Proto).";
const HEADER_ID: &str = "the header, if any, is for this post id: `PostHeader.postId`: The 32-byte PostId this header belongs to. [idMismatch: A content id (PostId, blob id, comment hash) does not match the bytes it names.]";
const IDS: &str = "Ids are `Data` of a fixed length (NodeId, PostingId, PostId: 32 bytes [...]). A wrong length is rejected as `malformed`.";
const ACK: &str =
    "Ack: the message was parsed, validated and accepted (stored or knowingly ignored).";
const PERSONA: &str = "`Post.author` is a posting id [...] A receiver judges a post by its own bytes and signatures only: the connection that pushes or serves it need not be its author, and the post is held and served under `Post.author`, never under the connection's NodeId.";
const VIS_SIG: &str = "`SyncPost.visibilitySignature` covers BLAKE3(postId ‖ canonical bytes of `PostVisibility`) [...] purpose `post-visibility`, key `Post.author`.";

fn flip(mut v: Vec<u8>, at: usize) -> Vec<u8> {
    if let Some(b) = v.get_mut(at) {
        *b ^= 0x01;
    }
    v
}

/// The POST cases.
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Limit, Negative, Positive};
    use Level::{Must, Should};
    vec![
        def("POST-4-001", Must, Positive, Role::Any, None, "a valid signed public post is acknowledged and served back byte-identical", "schema/README.md §4", ACK)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let sp = Sp::public(&a, &text(ctx, "post"));
                push_accepted(ctx, &a, &sp.push(), &sp.post, "valid public post").await
            })),
        def("POST-4-002", Must, Negative, Role::Any, None, "a post whose signature has one bit flipped is refused badSignature", "schema/README.md §4", SIG_RULE)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "flipped sig"));
                sp.sig = flip(sp.sig, 40);
                push_refused(ctx, &a, &sp.push(), &["badSignature"]).await
            })),
        def("POST-4-003", Must, Negative, Role::Any, None, "a post signed by another key than its author is refused badSignature", "schema/README.md §4", SIG_RULE)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "other key"));
                sp.sig = Signer::fixture(1).sign("post", &sp.post).to_vec();
                push_refused(ctx, &a, &sp.push(), &["badSignature"]).await
            })),
        def("POST-4-004", Must, Negative, Role::Any, None, "a post whose bytes changed after signing (one text bit) is refused badSignature", "schema/README.md §4", SIG_RULE)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "tampered"));
                let last = sp.post.iter().rposition(|&b| b == b' ').unwrap_or(0);
                sp.post = flip(sp.post, last + 1);
                push_refused(ctx, &a, &sp.push(), &["badSignature"]).await
            })),
        def("POST-4-005", Must, Negative, Role::Any, None, "post bytes with a trailing zero word (signed as sent) are refused nonCanonical", "schema/README.md §4", CANON)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "trailing"));
                sp.post.extend_from_slice(&[0; 8]);
                sp.sig = a.sign("post", &sp.post).to_vec();
                push_refused(ctx, &a, &sp.push(), &["nonCanonical"]).await
            })),
        def("POST-4-006", Must, Negative, Role::Any, None, "post bytes with an untruncated (zero) data word (signed as sent) are refused nonCanonical", "schema/README.md §4", CANON)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "untruncated"));
                sp.post = with_data_word(&sp.post, POST_DATA_WORDS, 0);
                sp.sig = a.sign("post", &sp.post).to_vec();
                push_refused(ctx, &a, &sp.push(), &["nonCanonical"]).await
            })),
        def("POST-4-007", Must, Negative, Role::Any, None, "a post whose header names another PostId is refused idMismatch", "schema/README.md §4", HEADER_ID)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "header id"));
                let other = ctx.random32();
                let header = codec::canonical_of(&distsoc_protocol::messages::content::PostHeader {
                    post_id: distsoc_protocol::ids::PostId(other),
                    author: PostingId(a.public()),
                    comment_policy: distsoc_protocol::messages::content::CommentPolicy::Public,
                    pub_post: None,
                    wrap_slots: Vec::new(),
                    updated_at_ms: now_ms(),
                });
                let hs = a.sign("post-header", &header).to_vec();
                sp.header = Some((header, hs));
                push_refused(ctx, &a, &sp.push(), &["idMismatch"]).await
            })),
        def("POST-4-008", Must, Negative, Role::Any, None, "a post with a 63-byte signature is refused", "schema/README.md §4", "`SignedPost.signature`: 64-byte ed25519 signature by `Post.author` over these bytes, purpose \"post\".")
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "short sig"));
                sp.sig.truncate(63);
                push_refused(ctx, &a, &sp.push(), &["malformed", "badSignature"]).await
            })),
        def("POST-4-009", Must, Negative, Role::Any, None, "a post with a 31-byte author (signed as sent) is refused malformed", "schema/README.md §4", IDS)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let t = text(ctx, "short author");
                let post = canonical::<content_capnp::post::Owned, _>(|mut b| {
                    b.set_author(&a.public()[..31]);
                    b.set_created_at_ms(now_ms());
                    b.init_content().init_plain().set_text(t.as_str());
                });
                let sp = Sp { sig: a.sign("post", &post).to_vec(), post, ..Sp::default() };
                push_refused(ctx, &a, &sp.push(), &["malformed"]).await
            })),
        def("POST-10-010", Must, Limit, Role::Any, None, "a post whose text is 65,537 bytes is refused tooLarge", "schema/README.md §10", TEXT_LIMIT)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut t = text(ctx, "long");
                t.push_str(&"x".repeat(65_537 - t.len()));
                let sp = Sp::public(&a, &t);
                push_refused(ctx, &a, &sp.push(), &["tooLarge"]).await
            })),
        def("POST-10-011", Must, Limit, Role::Any, None, "a post whose text is exactly 65,536 bytes is accepted", "schema/README.md §10", TEXT_LIMIT)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut t = text(ctx, "at limit");
                t.push_str(&"y".repeat(65_536 - t.len()));
                let sp = Sp::public(&a, &t);
                push_accepted(ctx, &a, &sp.push(), &sp.post, "text of 65,536 bytes").await
            })),
        def("POST-10-012", Must, Limit, Role::Any, None, "post canonical bytes over 256 KiB (signed) are refused tooLarge", "schema/README.md §10", POST_LIMIT)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let t = text(ctx, "huge");
                let post = canonical::<content_capnp::post::Owned, _>(|mut b| {
                    b.set_author(&a.public());
                    b.set_created_at_ms(now_ms());
                    let mut body = b.init_content().init_plain();
                    body.set_text(t.as_str());
                    let mut l = body.init_attachments(32);
                    for i in 0..32 {
                        let mut at = l.reborrow().get(i);
                        at.set_blob_id(&[i as u8; 32]);
                        at.set_mime_type("application/octet-stream");
                        at.set_size_bytes(1);
                        at.set_name("n".repeat(9000).as_str());
                    }
                });
                let sp = Sp { sig: a.sign("post", &post).to_vec(), post, ..Sp::default() };
                push_refused(ctx, &a, &sp.push(), &["tooLarge"]).await
            })),
        def("POST-3-013", Must, Positive, Role::Any, None, "a PushPost with unknown fields in its unsigned wrapper is accepted", "schema/README.md §3", IGNORE)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let sp = Sp::public(&a, &text(ctx, "wide wrapper"));
                let frame = sp.push();
                let widened = wire::single_segment_words(&frame)
                    .and_then(|w| wire::split_root(&w).map(|(d, p, rest)| wire::widen_root(&d, &p, &rest, &[0x7777, 0x1234_5678], 2)))
                    .map_or(frame, |w| wire::single(code::PUSH_POST, &w));
                push_accepted(ctx, &a, &widened, &sp.post, "PushPost with 2 extra data words and 2 null pointers").await
            })),
        def("POST-4-014", Must, Positive, Role::Any, None, "a post whose signed bytes carry an unknown (newer) field is accepted and served back with the same bytes", "schema/README.md §4", "Receivers **ignore unknown fields** [§3] [...] hashes and verifies the bytes **as received**, never a re-encoding of the decoded value.")
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "newer field"));
                sp.post = with_data_word(&sp.post, POST_DATA_WORDS, 0x0102_0304_0506_0708);
                sp.sig = a.sign("post", &sp.post).to_vec();
                push_accepted(ctx, &a, &sp.push(), &sp.post, "post with an extra nonzero data word").await
            })),
        def("POST-4-015", Must, Negative, Role::Any, None, "a public post with an invalid visibilitySignature is refused badSignature", "schema/README.md §4", VIS_SIG)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "vis sig"));
                sp.visibility = Some(PostVisibility::Public);
                let mut d = blake3::Hasher::new();
                d.update(&ctx.random32());
                sp.vis_sig = a.sign("post-visibility", d.finalize().as_bytes()).to_vec();
                push_refused(ctx, &a, &sp.push(), &["badSignature"]).await
            })),
        def("POST-4-016", Must, Positive, Role::Any, None, "a public post with a valid visibilitySignature is accepted", "schema/README.md §4", VIS_SIG)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "good vis sig"));
                let vis = PostVisibility::Public;
                let mut d = blake3::Hasher::new();
                d.update(&sp.id());
                d.update(&codec::canonical_of(&vis));
                sp.vis_sig = a.sign("post-visibility", d.finalize().as_bytes()).to_vec();
                sp.visibility = Some(vis);
                push_accepted(ctx, &a, &sp.push(), &sp.post, "public post with visibilitySignature").await
            })),
        def("POST-4-017", Must, Positive, Role::Any, None, "pushing the same post twice is idempotent: Ack both times, stored once", "schema/README.md §4", POSTID)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let s = match accepting_session(ctx, &a).await? { Ok(s) => s, Err(o) => return Ok(o) };
                let sp = Sp::public(&a, &text(ctx, "twice"));
                let expected = "Ack, Ack, and the post appears once in a pull";
                let r1 = s.request(&sp.push()).await;
                let r2 = s.request(&sp.push()).await;
                let outcome = match (is_ack(&r1), is_ack(&r2)) {
                    (Ok(()), Ok(())) if ctx.has_capability("pull-sync/1") => match pull_all(&s, &[a.public()], 0).await {
                        Ok(p) => {
                            let n = p.posts.iter().filter(|p| p.id() == sp.id()).count();
                            Outcome::check(n == 1, expected, format!("Ack, Ack; the pull returns it {n} times"))
                        }
                        Err(e) => Outcome::fail(expected, format!("Ack, Ack; pull: {e}")),
                    },
                    (Ok(()), Ok(())) => Outcome::pass(expected, "Ack, Ack"),
                    (a1, a2) => Outcome::fail(expected, format!("first: {a1:?}; second: {a2:?}")),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("POST-4-018", Must, Negative, Role::Any, None, "a post with an empty signature is refused", "schema/README.md §4", SIG_RULE)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "no sig"));
                sp.sig.clear();
                push_refused(ctx, &a, &sp.push(), &["malformed", "badSignature"]).await
            })),
        def("POST-4-019", Should, Negative, Role::Any, None, "a post whose header is signed by another key is refused badSignature", "schema/README.md §4", "| `post-header` | `PostHeader` | `author` |")
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let mut sp = Sp::public(&a, &text(ctx, "header sig"));
                let header = codec::canonical_of(&distsoc_protocol::messages::content::PostHeader {
                    post_id: distsoc_protocol::ids::PostId(sp.id()),
                    author: PostingId(a.public()),
                    comment_policy: distsoc_protocol::messages::content::CommentPolicy::Public,
                    pub_post: None,
                    wrap_slots: Vec::new(),
                    updated_at_ms: now_ms(),
                });
                let hs = Signer::fixture(2).sign("post-header", &header).to_vec();
                sp.header = Some((header, hs));
                push_refused(ctx, &a, &sp.push(), &["badSignature"]).await
            })),
        def("POST-4-020", Must, Positive, Role::Any, None, "a post by a posting key that is not the pushing connection's NodeId (a persona) is accepted and served under its author only", "schema/README.md §4", PERSONA)
            .run(|ctx| Box::pin(async move {
                let a = Signer::fixture(0);
                let s = match accepting_session(ctx, &a).await? { Ok(s) => s, Err(o) => return Ok(o) };
                if s.client_id == a.public() {
                    return Err(CaseError::Setup("the connection's key is the fixture author's".into()));
                }
                let sp = Sp::public(&a, &text(ctx, "persona"));
                let expected = "Ack; the post is served back under its author; a pull of the connection's NodeId does not return it";
                if let Err(got) = is_ack(&s.request(&sp.push()).await) {
                    return Ok(Outcome::fail(expected, got).and_usable(ctx.still_usable(&s).await));
                }
                let mut outcome = match served_back(ctx, &s, &a.public(), &sp.id(), &sp.post).await {
                    Ok(how) => Outcome::pass(expected, format!("Ack; {how}")),
                    Err(why) => Outcome::fail(expected, format!("Ack; {why}")),
                };
                if ctx.has_capability("pull-sync/1") {
                    match pull_all(&s, &[s.client_id], 0).await {
                        Ok(p) if p.posts.iter().any(|p| p.id() == sp.id()) => {
                            outcome.passed = false;
                            outcome.actual.push_str("; a pull of the connection's NodeId RETURNS it");
                        }
                        Ok(_) => outcome.actual.push_str("; not under the connection's NodeId"),
                        Err(e) => {
                            outcome.passed = false;
                            outcome.actual.push_str(&format!("; pull of the connection's NodeId: {e}"));
                        }
                    }
                }
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
    ]
}

/// Reads a reply as an `Error` or `Ack` for reports.
pub(crate) fn describe(reply: &Reply) -> String {
    match reply_frame(reply) {
        Ok(f) if f.code == code::ACK => "Ack".into(),
        Ok(f) if f.code == code::ERROR => f.error().map_or_else(|e| e, |e| e.to_string()),
        Ok(f) => format!("frame 0x{:02x}", f.code),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The fixture identities as conformance/README.md defines them: seed n =
    /// BLAKE3 of the 34-byte label followed by n as one byte (35 bytes in
    /// all), pinned to their public keys so the README's list cannot drift.
    #[test]
    fn fixture_ids_follow_the_documented_encoding() {
        for n in 0..SEEDED {
            let mut input = b"distsoc-conformance fixture author".to_vec();
            assert_eq!(input.len(), 34);
            input.push(n);
            assert_eq!(
                *blake3::hash(&input).as_bytes(),
                fixture_seed(n),
                "seed {n}"
            );
        }
        let ids: Vec<String> = fixture_ids().iter().map(hex::encode).collect();
        assert_eq!(ids, PINNED);
    }

    const PINNED: [&str; 5] = [
        "2b1ce4815bce495855bbbfb8ef2b9039e9e7330879068af5f811cc9793aae696",
        "5c453b596691a8a16849c745f80d81dfa972de5db8605d6558a942225c0e5475",
        "f98e1b59789e8eac1054824c3c74b99268f51974d206a0d8b85a3a38eb579e70",
        "e9312e1a1dcdde37c8e238cd4a501b4a83223c675ed0a6a1a81b1248e6f97aff",
        "7ef8018c0d426b4a0893924850abfff7c33a88c8915db1e199fe379f47b5b044",
    ];
}
