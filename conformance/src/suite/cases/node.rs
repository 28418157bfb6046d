//! NODE: the requests and pushes a user node serves besides pull sync
//! (FileRequest, AuthorUpdateRequest/Push, ProfileUpdate, DeleteRecord,
//! VisibilityUpdate, PostNotification, audience messages): one positive
//! case and the key negatives each (schema/README.md §2, §4, §5, §8, §10).

use distsoc_schema::{content_capnp, files_capnp, identity_capnp, social_capnp};

use super::def;
use super::post::{
    accepting_session, canonical, file_blob, file_post, is_ack, pull, pull_all, read_file_blob,
    read_file_post, text, verify, Signer, Sp,
};
use crate::suite::client::Reply;
use crate::suite::ctx::{
    error_words, expect_code, expect_error, now_ms, req, CaseError, Ctx, Outcome, Session,
};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::{self, code, PROTOCOL_VERSION};

// ---- builders ---------------------------------------------------------------------

/// Canonical `PublicProfile`.
pub(crate) fn profile_bytes(id: &[u8], name: &str, updated_at_ms: u64) -> Vec<u8> {
    canonical::<identity_capnp::public_profile::Owned, _>(|mut b| {
        b.set_posting_id(id);
        b.set_display_name(name);
        b.set_updated_at_ms(updated_at_ms);
    })
}

/// Canonical `AuthorRecentPosts`.
pub(crate) fn recent_bytes(
    author: &[u8],
    seq: u64,
    updated_at_ms: u64,
    posts: &[[u8; 32]],
) -> Vec<u8> {
    canonical::<content_capnp::author_recent_posts::Owned, _>(|mut b| {
        b.set_author(author);
        b.set_seq(seq);
        b.set_updated_at_ms(updated_at_ms);
        let mut l = b.init_posts(posts.len() as u32);
        for (i, p) in posts.iter().enumerate() {
            let mut e = l.reborrow().get(i as u32);
            e.set_post_id(p);
            e.set_created_at_ms(updated_at_ms);
        }
    })
}

/// Canonical `DeleteRecordBody`.
pub(crate) fn delete_bytes(post_id: &[u8], author: &[u8], at: u64) -> Vec<u8> {
    canonical::<content_capnp::delete_record_body::Owned, _>(|mut b| {
        b.set_post_id(post_id);
        b.set_author(author);
        b.set_deleted_at_ms(at);
    })
}

/// Canonical `VisibilityUpdateBody` with an encrypted visibility for one
/// (made-up) recipient.
pub(crate) fn visibility_update_bytes(
    post_id: &[u8],
    author: &[u8],
    at: u64,
    eph: &[u8; 32],
) -> Vec<u8> {
    canonical::<content_capnp::visibility_update_body::Owned, _>(|mut b| {
        b.set_post_id(post_id);
        b.set_author(author);
        b.set_updated_at_ms(at);
        let mut enc = b.init_visibility().init_encrypted();
        enc.set_ephemeral_key(eph);
        let mut w = enc.init_recipients(1).get(0);
        w.set_recipient(eph);
        w.set_wrapped(&[7u8; 48]);
    })
}

/// ProfileUpdate { profile }.
pub(crate) fn profile_update(body: &[u8], sig: &[u8]) -> Vec<u8> {
    wire::build::<social_capnp::profile_update::Owned, _>(code_of(0x50), |mut b| {
        b.set_version(PROTOCOL_VERSION);
        let mut p = b.init_profile();
        p.set_profile(body);
        p.set_signature(sig);
    })
}

/// AuthorUpdatePush { recent }.
pub(crate) fn author_update_push(body: &[u8], sig: &[u8]) -> Vec<u8> {
    wire::build::<files_capnp::author_update_push::Owned, _>(code_of(0x34), |mut b| {
        b.set_version(PROTOCOL_VERSION);
        let mut r = b.init_recent();
        r.set_recent(body);
        r.set_signature(sig);
    })
}

/// DeleteRecord { record }.
pub(crate) fn delete_record(body: &[u8], sig: &[u8]) -> Vec<u8> {
    wire::build::<social_capnp::delete_record::Owned, _>(code_of(0x51), |mut b| {
        b.set_version(PROTOCOL_VERSION);
        let mut r = b.init_record();
        r.set_record(body);
        r.set_signature(sig);
    })
}

/// VisibilityUpdate { update }.
pub(crate) fn visibility_update(body: &[u8], sig: &[u8]) -> Vec<u8> {
    wire::build::<social_capnp::visibility_update::Owned, _>(code_of(0x52), |mut b| {
        b.set_version(PROTOCOL_VERSION);
        let mut r = b.init_update();
        r.set_update(body);
        r.set_signature(sig);
    })
}

/// The message codes the suite's `wire::code` table does not name.
const fn code_of(c: u8) -> u8 {
    c
}

/// Sends a push on a fresh session: Error with one of `allowed`, connection
/// still usable.
pub(crate) async fn push_refused_any(
    ctx: &mut Ctx,
    frame: &[u8],
    allowed: &[&str],
) -> Result<Outcome, CaseError> {
    super::refuse(ctx, frame, allowed).await
}

/// A signed list as (canonical bytes, signature).
type SignedList = (Vec<u8>, Vec<u8>);

/// Reads an AuthorUpdateResponse: `Some(bytes, sig)` or `None` for notModified.
fn read_author_update(reply: &Reply) -> Result<Option<SignedList>, String> {
    let f = expect_code(reply, 0x33)?;
    let e = |e: capnp::Error| e.to_string();
    let reader = f.reader();
    let r: files_capnp::author_update_response::Reader<'_> = reader.get_root().map_err(e)?;
    match r
        .which()
        .map_err(|_| "unknown AuthorUpdateResponse arm".to_string())?
    {
        files_capnp::author_update_response::Recent(l) => {
            let l = l.map_err(e)?;
            Ok(Some((
                l.get_recent().map_err(e)?.to_vec(),
                l.get_signature().map_err(e)?.to_vec(),
            )))
        }
        files_capnp::author_update_response::NotModified(()) => Ok(None),
    }
}

/// A fresh seq that grows across runs against the same target.
fn fresh_seq() -> u64 {
    now_ms().saturating_mul(1000)
}

/// Pushes `lists` (each signed by `a`) in order on one session; returns the
/// replies and what AuthorUpdateRequest(haveSeq 0) answers afterwards.
async fn push_lists(
    ctx: &mut Ctx,
    a: &Signer,
    lists: &[Vec<u8>],
) -> Result<(Session, Vec<Reply>, Result<Option<SignedList>, String>), CaseError> {
    let s = ctx.connect().await?;
    let mut replies = Vec::new();
    for l in lists {
        let sig = a.sign("recent-posts", l);
        replies.push(s.request(&author_update_push(l, &sig)).await);
    }
    let held = read_author_update(
        &s.request(&req::author_update(PROTOCOL_VERSION, &a.public(), 0))
            .await,
    );
    Ok((s, replies, held))
}

fn describe(r: &Reply) -> String {
    super::post::describe(r)
}

/// Posts by the target's own NodeId (pre-split posting id) it returns in a
/// pull for that id.
async fn own_posts(
    ctx: &mut Ctx,
    s: &Session,
    ids: &[[u8; 32]],
) -> Result<Vec<super::post::GotPost>, String> {
    let _ = ctx;
    Ok(pull_all(s, ids, 0).await?.posts)
}

const SEQ: &str = "A holder never replaces an `AuthorRecentPosts` with one of lower `seq` (`stale`); for equal `seq` with different bytes, the first one seen is kept.";
const FILES: &str = "FileResponse [...] Missing content is answered with Error(notFound).";
const IDS: &str = "Ids are `Data` of a fixed length (NodeId, PostingId, PostId: 32 bytes [...]). A wrong length is rejected as `malformed`.";
const BLOB: &str = "**BlobId** = BLAKE3-256(blob bytes). [FileResponse.blob: The requested blob's bytes; at most 262144. The receiver checks BLAKE3.]";
const PROFILE: &str = "ProfileUpdate: A new public profile. Receivers keep the newest by `updatedAtMs` and answer `stale` for older ones.";
const DELETE: &str = "DeleteRecord: An author's delete request; honoured by default: the post is removed and the record kept so the post is not re-accepted.";
const DELETE_AUTHOR: &str = "`DeleteRecordBody.author`: The 32-byte PostingId of the post's author; signs the record. Must equal the post's author, or the record is `unauthorized`.";

fn flip(mut v: Vec<u8>, at: usize) -> Vec<u8> {
    if let Some(b) = v.get_mut(at) {
        *b ^= 1;
    }
    v
}

/// Pushes a fresh post by fixture `n` on an accepting session.
async fn held_post(
    ctx: &mut Ctx,
    n: u8,
) -> Result<Result<(Session, Signer, Sp), Outcome>, CaseError> {
    let a = Signer::fixture(n);
    let s = match accepting_session(ctx, &a).await? {
        Ok(s) => s,
        Err(o) => return Ok(Err(o)),
    };
    let sp = Sp::public(&a, &text(ctx, "held"));
    let reply = s.request(&sp.push()).await;
    if let Err(e) = is_ack(&reply) {
        let usable = ctx.still_usable(&s).await;
        return Ok(Err(
            Outcome::fail("a valid post is acknowledged", e).and_usable(usable)
        ));
    }
    Ok(Ok((s, a, sp)))
}

/// The NODE cases.
#[allow(clippy::too_many_lines)]
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Limit, Negative, Positive};
    use Level::{Must, Should};
    vec![
        def("NODE-2-001", Must, Negative, Role::Node, Some("files/1"), "FileRequest for an unknown post id is answered notFound", "schema/README.md §2", FILES)
            .run(|ctx| Box::pin(async move { let id = ctx.random32(); super::refuse(ctx, &file_post(&id), &["notFound"]).await })),
        def("NODE-2-002", Must, Negative, Role::Node, Some("files/1"), "FileRequest for an unknown blob id is answered notFound", "schema/README.md §2", FILES)
            .run(|ctx| Box::pin(async move { let id = ctx.random32(); super::refuse(ctx, &file_blob(&id), &["notFound"]).await })),
        def("NODE-2-003", Must, Negative, Role::Node, Some("files/1"), "FileRequest with a 31-byte post id is malformed", "schema/README.md §2", IDS)
            .run(|ctx| Box::pin(async move { let id = ctx.random32(); super::refuse(ctx, &file_post(&id[..31]), &["malformed"]).await })),
        def("NODE-2-004", Must, Negative, Role::Node, Some("files/1"), "FileRequest with a 33-byte blob id is malformed", "schema/README.md §2", IDS)
            .run(|ctx| Box::pin(async move { let mut id = ctx.random32().to_vec(); id.push(0); super::refuse(ctx, &file_blob(&id), &["malformed"]).await })),
        def("NODE-4-005", Must, Positive, Role::Node, Some("files/1"), "FileRequest for a held post returns bytes whose BLAKE3 is the requested id, validly signed", "schema/README.md §4", "**PostId** = BLAKE3-256(canonical bytes of `Post`).")
            .run(|ctx| Box::pin(async move {
                let (s, _, sp) = match held_post(ctx, 1).await? { Ok(x) => x, Err(o) => return Ok(o) };
                let expected = "FileResponse.post with BLAKE3(post) = requested id, signature valid";
                let outcome = match read_file_post(&s.request(&file_post(&sp.id())).await) {
                    Ok(p) if p.id() != sp.id() => Outcome::fail(expected, format!("post with id {}", hex::encode(p.id()))),
                    Ok(p) => match p.check() { Ok(()) => Outcome::pass(expected, "verified"), Err(e) => Outcome::fail(expected, e) },
                    Err(e) => Outcome::fail(expected, e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-4-006", Must, Positive, Role::Node, Some("pull-sync/1"), "the target's own public posts verify independently, and FileRequest serves them and their attachment blobs with matching ids", "schema/README.md §4", BLOB)
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let me = ctx.target.node_id;
                let posts = own_posts(ctx, &s, &[me]).await.map_err(CaseError::Setup)?;
                let public: Vec<_> = posts.into_iter().filter(|p| p.recipients.is_none()).collect();
                if public.is_empty() {
                    return Err(CaseError::Skipped("the target returns no public post of its own NodeId to pull".into()));
                }
                let expected = "every own post verifies (PostId, signature); FileRequest returns it and its blobs hash to their BlobIds";
                let mut checked = (0, 0);
                for p in &public {
                    if let Err(e) = p.check() {
                        return Ok(Outcome::fail(expected, format!("post {}: {e}", hex::encode(p.id()))));
                    }
                    checked.0 += 1;
                    if !ctx.has_capability("files/1") { continue; }
                    match read_file_post(&s.request(&file_post(&p.id())).await) {
                        Ok(f) if f.post == p.post => {}
                        Ok(_) => return Ok(Outcome::fail(expected, "FileRequest returned other bytes")),
                        Err(e) => return Ok(Outcome::fail(expected, format!("FileRequest: {e}"))),
                    }
                    for blob in attachment_ids(&p.post) {
                        match read_file_blob(&s.request(&file_blob(&blob)).await) {
                            Ok(b) if *blake3::hash(&b).as_bytes() == blob && b.len() <= 262_144 => checked.1 += 1,
                            Ok(b) => return Ok(Outcome::fail(expected, format!("blob {} of {} bytes hashes to {}", hex::encode(blob), b.len(), blake3::hash(&b).to_hex()))),
                            Err(e) if e.contains("notFound") => {}
                            Err(e) => return Ok(Outcome::fail(expected, format!("blob: {e}"))),
                        }
                    }
                }
                Ok(Outcome::pass(expected, format!("{} posts and {} blobs verified", checked.0, checked.1)).and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-8-007", Must, Positive, Role::Node, None, "AuthorUpdatePush of a valid list is acknowledged and AuthorUpdateRequest returns exactly its bytes", "schema/README.md §8", SEQ)
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let seq = fresh_seq();
                let l = recent_bytes(&a.public(), seq, now_ms(), &[ctx.random32()]);
                let (s, replies, held) = push_lists(ctx, &a, std::slice::from_ref(&l)).await?;
                let expected = "Ack; then AuthorUpdateResponse.recent with the same bytes and a valid signature";
                let outcome = match (replies.first().map(is_ack), held) {
                    (Some(Ok(())), Ok(Some((b, sig)))) if b == l => match verify(&a.public(), "recent-posts", &b, &sig) {
                        Ok(()) => Outcome::pass(expected, "Ack; list served back"),
                        Err(e) => Outcome::fail(expected, e),
                    },
                    (Some(Ok(())), other) => Outcome::fail(expected, format!("Ack; then {other:?}")),
                    (r, _) => Outcome::fail(expected, format!("{r:?}")),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-8-008", Must, Negative, Role::Node, None, "AuthorUpdatePush with a lower seq than the held list is refused stale and changes nothing", "schema/README.md §8", SEQ)
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let seq = fresh_seq();
                let hi = recent_bytes(&a.public(), seq, now_ms(), &[ctx.random32()]);
                let lo = recent_bytes(&a.public(), seq - 1, now_ms(), &[ctx.random32()]);
                let (s, replies, held) = push_lists(ctx, &a, &[hi.clone(), lo]).await?;
                let expected = "Ack, then Error(stale); the held list stays the higher one";
                let second = replies.get(1).map(|r| expect_error(r, &["stale"]));
                let outcome = match (replies.first().map(is_ack), second, held) {
                    (Some(Ok(())), Some(Ok(_)), Ok(Some((b, _)))) if b == hi => Outcome::pass(expected, "Ack, stale, higher list kept"),
                    (f, sec, h) => Outcome::fail(expected, format!("first {f:?}; second {sec:?}; held {}", h.map_or_else(|e| e, |h| if h.map(|x| x.0) == Some(hi.clone()) { "higher".into() } else { "other".into() }))),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-8-009", Must, Negative, Role::Node, None, "AuthorUpdatePush with the held seq but different bytes keeps the first list (Ack or stale)", "schema/README.md §8", SEQ)
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let seq = fresh_seq();
                let first = recent_bytes(&a.public(), seq, now_ms(), &[ctx.random32()]);
                let other = recent_bytes(&a.public(), seq, now_ms(), &[ctx.random32()]);
                let (s, replies, held) = push_lists(ctx, &a, &[first.clone(), other]).await?;
                let expected = "Ack; then Error(stale) or Ack (knowingly ignored); the held list stays the first";
                let second_ok = replies.get(1).is_some_and(|r| is_ack(r).is_ok() || expect_error(r, &["stale"]).is_ok());
                let kept = matches!(&held, Ok(Some((b, _))) if *b == first);
                let outcome = Outcome::check(
                    replies.first().is_some_and(|r| is_ack(r).is_ok()) && second_ok && kept,
                    expected,
                    format!("{}; held first list: {kept}", replies.iter().map(describe).collect::<Vec<_>>().join(", ")),
                );
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-8-010", Must, Positive, Role::Node, None, "AuthorUpdateRequest with haveSeq equal to the held seq is answered notModified", "schema/README.md §8", "`haveSeq`: The responder answers `notModified` if it holds nothing newer.")
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let seq = fresh_seq();
                let l = recent_bytes(&a.public(), seq, now_ms(), &[]);
                let (s, _, _) = push_lists(ctx, &a, &[l]).await?;
                let reply = s.request(&req::author_update(PROTOCOL_VERSION, &a.public(), seq)).await;
                let expected = "AuthorUpdateResponse.notModified";
                let outcome = match read_author_update(&reply) {
                    Ok(None) => Outcome::pass(expected, "notModified"),
                    Ok(Some(_)) => Outcome::fail(expected, "a list"),
                    Err(e) => Outcome::fail(expected, e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-8-011", Must, Negative, Role::Node, None, "AuthorUpdateRequest for an author the target knows nothing of: notModified or notFound", "schema/README.md §8", "The responder answers `notModified` if it holds nothing newer. [notFound: The named object (post, blob, channel, author) is not held here.]")
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let reply = s.request(&req::author_update(PROTOCOL_VERSION, &ctx.random32(), 0)).await;
                let expected = "AuthorUpdateResponse.notModified or Error(notFound)";
                let outcome = match read_author_update(&reply) {
                    Ok(None) => Outcome::pass(expected, "notModified"),
                    Ok(Some(_)) => Outcome::fail(expected, "a list for an unknown author"),
                    Err(_) => match expect_error(&reply, &["notFound"]) {
                        Ok(e) => Outcome::pass(expected, e.to_string()),
                        Err(got) => Outcome::fail(expected, got),
                    },
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-10-012", Must, Limit, Role::Node, None, "AuthorUpdatePush whose canonical list exceeds 256 KiB is refused tooLarge", "schema/README.md §10", "| `AuthorRecentPosts` | 256 KiB | tooLarge |")
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let ids: Vec<[u8; 32]> = (0..5600u32).map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes()).collect();
                let l = recent_bytes(&a.public(), fresh_seq(), now_ms(), &ids);
                let sig = a.sign("recent-posts", &l);
                push_refused_any(ctx, &author_update_push(&l, &sig), &["tooLarge"]).await
            })),
        def("NODE-4-013", Must, Negative, Role::Node, None, "AuthorUpdatePush with a flipped signature bit is refused badSignature", "schema/README.md §4", "| `recent-posts` | `AuthorRecentPosts` | `author` |")
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let l = recent_bytes(&a.public(), fresh_seq(), now_ms(), &[]);
                let sig = flip(a.sign("recent-posts", &l).to_vec(), 10);
                push_refused_any(ctx, &author_update_push(&l, &sig), &["badSignature"]).await
            })),
        def("NODE-11-014", Must, Positive, Role::Node, Some("pull-sync/1"), "a valid ProfileUpdate is acknowledged and returned byte-identical in PullSyncResponse.profiles", "schema/README.md §7", "`profiles`: The newest profiles the responder holds for posting ids in the request's `ids`.")
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let body = profile_bytes(&a.public(), "conformance", now_ms());
                let sig = a.sign("profile", &body);
                let s = ctx.connect().await?;
                let r = s.request(&profile_update(&body, &sig)).await;
                let expected = "Ack; then a pull for the id returns the profile bytes with a valid signature";
                let outcome = match is_ack(&r) {
                    Err(e) => Outcome::fail(expected, e),
                    Ok(()) => match pull(&s, &[a.public()], 0, 0).await {
                        Ok(p) => match p.profiles.iter().find(|(b, _)| *b == body) {
                            Some((b, sg)) => match verify(&a.public(), "profile", b, sg) {
                                Ok(()) => Outcome::pass(expected, "profile returned and verified"),
                                Err(e) => Outcome::fail(expected, e),
                            },
                            None => Outcome::fail(expected, format!("{} profiles, none with these bytes", p.profiles.len())),
                        },
                        Err(e) => Outcome::fail(expected, e),
                    },
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-11-015", Must, Negative, Role::Node, None, "a ProfileUpdate older than the held one is refused stale", "schema/README.md §11", PROFILE)
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let t = now_ms();
                let newer = profile_bytes(&a.public(), "newer", t);
                let older = profile_bytes(&a.public(), "older", t - 60_000);
                let s = ctx.connect().await?;
                let r1 = s.request(&profile_update(&newer, &a.sign("profile", &newer))).await;
                let r2 = s.request(&profile_update(&older, &a.sign("profile", &older))).await;
                let expected = "Ack, then Error(stale)";
                let outcome = match (is_ack(&r1), expect_error(&r2, &["stale"])) {
                    (Ok(()), Ok(e)) => Outcome::pass(expected, format!("Ack, {e}")),
                    (x, y) => Outcome::fail(expected, format!("{x:?}, {y:?}")),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-4-016", Must, Negative, Role::Node, None, "a ProfileUpdate with a flipped signature bit is refused badSignature", "schema/README.md §4", "| `profile` | `PublicProfile` | `postingId` |")
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let body = profile_bytes(&a.public(), "x", now_ms());
                let sig = flip(a.sign("profile", &body).to_vec(), 3);
                push_refused_any(ctx, &profile_update(&body, &sig), &["badSignature"]).await
            })),
        def("NODE-4-017", Should, Positive, Role::Node, None, "a valid DeleteRecord by the author removes the held post (FileRequest notFound, not pulled)", "schema/README.md §4", DELETE)
            .run(|ctx| Box::pin(async move {
                let (s, a, sp) = match held_post(ctx, 2).await? { Ok(x) => x, Err(o) => return Ok(o) };
                let body = delete_bytes(&sp.id(), &a.public(), now_ms());
                let r = s.request(&delete_record(&body, &a.sign("delete", &body))).await;
                let expected = "Ack; the post is no longer served";
                let outcome = match is_ack(&r) {
                    Err(e) => Outcome::fail(expected, e),
                    Ok(()) => gone(ctx, &s, &a, &sp, expected).await,
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-4-018", Must, Negative, Role::Node, None, "a DeleteRecord with a flipped signature bit is refused badSignature", "schema/README.md §4", "| `delete` | `DeleteRecordBody` | `author` |")
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let body = delete_bytes(&ctx.random32(), &a.public(), now_ms());
                let sig = flip(a.sign("delete", &body).to_vec(), 5);
                push_refused_any(ctx, &delete_record(&body, &sig), &["badSignature"]).await
            })),
        def("NODE-4-019", Must, Negative, Role::Node, None, "a DeleteRecord for a held post signed by someone else than its author is refused unauthorized", "schema/README.md §4", DELETE_AUTHOR)
            .run(|ctx| Box::pin(async move {
                let (s, _, sp) = match held_post(ctx, 2).await? { Ok(x) => x, Err(o) => return Ok(o) };
                let other = Signer::Seed(ctx.random32());
                let body = delete_bytes(&sp.id(), &other.public(), now_ms());
                let r = s.request(&delete_record(&body, &other.sign("delete", &body))).await;
                let expected = "Error(unauthorized); the post is still served";
                let mut outcome = match expect_error(&r, &["unauthorized"]) {
                    Ok(e) => Outcome::pass(expected, e.to_string()),
                    Err(got) => Outcome::fail(expected, got),
                };
                if ctx.has_capability("files/1") && read_file_post(&s.request(&file_post(&sp.id())).await).is_err() {
                    outcome = Outcome::fail(expected, format!("{}; the post is gone", outcome.actual));
                }
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-4-020", Should, Negative, Role::Node, None, "a post deleted by its author is not re-accepted when pushed again", "schema/README.md §4", DELETE)
            .run(|ctx| Box::pin(async move {
                let (s, a, sp) = match held_post(ctx, 2).await? { Ok(x) => x, Err(o) => return Ok(o) };
                let body = delete_bytes(&sp.id(), &a.public(), now_ms());
                let r = s.request(&delete_record(&body, &a.sign("delete", &body))).await;
                let expected = "after the delete, a re-push is Ack (ignored) or an Error, and the post is not served";
                let outcome = match is_ack(&r) {
                    Err(e) => Outcome::fail(expected, format!("delete: {e}")),
                    Ok(()) => {
                        let again = s.request(&sp.push()).await;
                        let o = gone(ctx, &s, &a, &sp, expected).await;
                        Outcome { actual: format!("re-push: {}; {}", describe(&again), o.actual), ..o }
                    }
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-4-021", Must, Negative, Role::Node, None, "a DeleteRecord with a 31-byte postId is refused malformed", "schema/README.md §4", IDS)
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let body = delete_bytes(&ctx.random32()[..31], &a.public(), now_ms());
                let sig = a.sign("delete", &body);
                push_refused_any(ctx, &delete_record(&body, &sig), &["malformed"]).await
            })),
        def("NODE-5-022", Must, Negative, Role::Node, None, "a VisibilityUpdate with a flipped signature bit is refused (badSignature; notFound if the post is not held)", "schema/README.md §5", "| `visibility` | `VisibilityUpdateBody` | `author` |")
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let eph = ctx.random32();
                let body = visibility_update_bytes(&ctx.random32(), &a.public(), now_ms(), &eph);
                let sig = flip(a.sign("visibility", &body).to_vec(), 9);
                push_refused_any(ctx, &visibility_update(&body, &sig), &["badSignature", "notFound"]).await
            })),
        def("NODE-5-023", Must, Negative, Role::Node, Some("pull-sync/1"), "a VisibilityUpdate for a held encrypted post by someone other than its author is refused unauthorized", "schema/README.md §5", "the newest `SignedVisibilityUpdate` the relay holds, by the post's author for this post id [...] (update by another author: `unauthorized`)")
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let mut ids = vec![ctx.target.node_id];
                ids.extend(super::post::fixture_ids());
                let posts = pull_all(&s, &ids, 0).await.map_err(CaseError::Setup)?;
                let Some(p) = posts.posts.iter().find(|p| p.recipients.is_some()) else {
                    return Err(CaseError::Skipped("the target serves no encrypted post to the suite's ids".into()));
                };
                let other = Signer::Seed(ctx.random32());
                let eph = ctx.random32();
                let body = visibility_update_bytes(&p.id(), &other.public(), now_ms(), &eph);
                let r = s.request(&visibility_update(&body, &other.sign("visibility", &body))).await;
                let expected = error_words(&["unauthorized"]);
                let outcome = match expect_error(&r, &["unauthorized"]) {
                    Ok(e) => Outcome::pass(&expected, e.to_string()),
                    Err(got) => Outcome::fail(&expected, got),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("NODE-2-024", Must, Positive, Role::Node, None, "a PostNotification on a bidirectional stream is acknowledged", "schema/README.md §1", "a push sent on a *bidirectional* stream is answered with `Ack` or `Error` (conformance testers rely on this).")
            .run(|ctx| Box::pin(async move {
                let (a, p) = (ctx.random32(), ctx.random32());
                super::served(ctx, &req::post_notification(PROTOCOL_VERSION, &a, &p), code::ACK, "PostNotification").await
            })),
        def("NODE-2-025", Must, Negative, Role::Node, None, "a PostNotification with a 31-byte postId is malformed", "schema/README.md §2", IDS)
            .run(|ctx| Box::pin(async move {
                let (a, p) = (ctx.random32(), ctx.random32());
                super::refuse(ctx, &req::post_notification(PROTOCOL_VERSION, &a, &p[..31]), &["malformed"]).await
            })),
        def("NODE-4-026", Must, Negative, Role::Node, None, "an AudienceRequest with a flipped signature bit is refused badSignature (unknownMessage if audience/1 is not declared)", "schema/README.md §4", "| `audience-request` / `audience-response` | the audience bodies | requester / author |")
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let author = ctx.random32();
                let body = canonical::<social_capnp::audience_request_body::Owned, _>(|mut b| {
                    b.set_requester(&a.public());
                    b.set_author(&author);
                    b.set_message("conformance");
                    b.set_created_at_ms(now_ms());
                });
                let sig = flip(a.sign("audience-request", &body).to_vec(), 7);
                let frame = wire::build::<social_capnp::audience_request::Owned, _>(0x43, |mut b| {
                    b.set_version(PROTOCOL_VERSION);
                    b.set_request(&body);
                    b.set_signature(&sig);
                });
                let allowed: &[&str] = if ctx.has_capability("audience/1") { &["badSignature"] } else { &["badSignature", "unknownMessage"] };
                super::refuse(ctx, &frame, allowed).await
            })),
        def("NODE-4-027", Must, Negative, Role::Node, None, "an AudienceResponse with a flipped signature bit is refused badSignature (unknownMessage if audience/1 is not declared)", "schema/README.md §4", "| `audience-request` / `audience-response` | the audience bodies | requester / author |")
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let requester = ctx.random32();
                let body = canonical::<social_capnp::audience_response_body::Owned, _>(|mut b| {
                    b.set_author(&a.public());
                    b.set_requester(&requester);
                    b.set_decision(social_capnp::AudienceDecision::Approved);
                    b.set_decided_at_ms(now_ms());
                });
                let sig = flip(a.sign("audience-response", &body).to_vec(), 7);
                let frame = wire::build::<social_capnp::audience_response::Owned, _>(0x44, |mut b| {
                    b.set_version(PROTOCOL_VERSION);
                    b.set_response(&body);
                    b.set_signature(&sig);
                });
                let allowed: &[&str] = if ctx.has_capability("audience/1") { &["badSignature"] } else { &["badSignature", "unknownMessage"] };
                super::refuse(ctx, &frame, allowed).await
            })),
        def("NODE-4-400", Must, Negative, Role::Node, None, "a validly signed AudienceRequest for an author that is not one of the target's posting ids is refused notFound (unknownMessage if audience/1 is not declared)", "schema/README.md §7", "`AudienceRequest`: [...] `author` must be one of the receiver's posting ids (`notFound` otherwise; nothing is stored)")
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let author = ctx.random32();
                let body = canonical::<social_capnp::audience_request_body::Owned, _>(|mut b| {
                    b.set_requester(&a.public());
                    b.set_author(&author);
                    b.set_message("conformance");
                    b.set_created_at_ms(now_ms());
                });
                let sig = a.sign("audience-request", &body);
                let frame = wire::build::<social_capnp::audience_request::Owned, _>(0x43, |mut b| {
                    b.set_version(PROTOCOL_VERSION);
                    b.set_request(&body);
                    b.set_signature(&sig);
                });
                let allowed: &[&str] = if ctx.has_capability("audience/1") { &["notFound"] } else { &["notFound", "unknownMessage"] };
                super::refuse(ctx, &frame, allowed).await
            })),
        def("NODE-2-401", Should, Negative, Role::Node, None, "a flood of pushes from one identity is rate limited (rateLimited with retryAfterMs > 0) and the connection stays usable", "schema/README.md §7", "Pushes from one peer are rate limited per NodeId; beyond the limit the receiver answers `rateLimited` with `retryAfterMs` > 0, before it verifies or stores anything, and the connection stays usable.")
            .run(|ctx| Box::pin(async move {
                const FLOOD: usize = 400;
                let s = ctx.connect().await?;
                let expected = format!("rateLimited with retryAfterMs > 0 within {FLOOD} PostNotification pushes");
                let mut outcome = Outcome::fail(&expected, format!("all {FLOOD} pushes acknowledged"));
                for i in 0..FLOOD {
                    let (a, p) = (ctx.random32(), ctx.random32());
                    // `exchange`, not `request`: no retry of rateLimited.
                    let r = s.exchange(&req::post_notification(PROTOCOL_VERSION, &a, &p)).await;
                    if is_ack(&r).is_ok() {
                        continue;
                    }
                    outcome = match expect_error(&r, &["rateLimited"]) {
                        Ok(e) if e.retry_after_ms > 0 => Outcome::pass(&expected, format!("rateLimited after {i} pushes, retryAfterMs {}", e.retry_after_ms)),
                        Ok(e) => Outcome::fail(&expected, format!("rateLimited without retryAfterMs: {e}")),
                        Err(got) => Outcome::fail(&expected, format!("push {i}: {got}")),
                    };
                    break;
                }
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
    ]
}

/// The post is not served any more (FileRequest notFound where declared,
/// not in a pull for its author where declared).
async fn gone(ctx: &mut Ctx, s: &Session, a: &Signer, sp: &Sp, expected: &str) -> Outcome {
    let mut notes = Vec::new();
    if ctx.has_capability("files/1") {
        let r = s.request(&file_post(&sp.id())).await;
        match expect_error(&r, &["notFound"]) {
            Ok(_) => notes.push("FileRequest notFound".to_string()),
            Err(got) => return Outcome::fail(expected, format!("FileRequest after delete: {got}")),
        }
    }
    if ctx.has_capability("pull-sync/1") {
        match pull_all(s, &[a.public()], 0).await {
            Ok(p) if p.has(&sp.id()) => {
                return Outcome::fail(expected, "still returned by PullSync")
            }
            Ok(_) => notes.push("not pulled".into()),
            Err(e) => return Outcome::fail(expected, format!("pull: {e}")),
        }
    }
    Outcome::pass(expected, notes.join(", "))
}

/// BlobIds of the attachments of a public post's canonical bytes.
fn attachment_ids(post: &[u8]) -> Vec<[u8; 32]> {
    let words: Vec<capnp::Word> = post
        .chunks(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            capnp::word(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7])
        })
        .collect();
    let seg = capnp::Word::words_to_bytes(&words);
    let segments: &[&[u8]] = &[seg];
    let msg = capnp::message::Reader::new(
        capnp::message::SegmentArray::new(segments),
        capnp::message::ReaderOptions::new(),
    );
    let mut out = Vec::new();
    let Ok(p) = msg.get_root::<content_capnp::post::Reader<'_>>() else {
        return out;
    };
    if let Ok(content_capnp::post::content::Plain(Ok(body))) = p.get_content().which() {
        if let Ok(list) = body.get_attachments() {
            for a in list.iter() {
                if let Ok(id) = a.get_blob_id() {
                    if let Ok(id) = <[u8; 32]>::try_from(id) {
                        out.push(id);
                    }
                }
            }
        }
    }
    out
}
