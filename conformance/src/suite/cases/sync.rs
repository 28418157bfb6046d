//! SYNC: pull sync (capability `pull-sync/1`, schema/README.md §7): only
//! posts the requester may receive, recipient match without the author's
//! self-wrap, the cursor, the limit and `more`, independent verification of
//! every returned post, request limits.

use super::def;
use super::post::{
    accepting_session, fixture_ids, is_ack, pull, pull_all, pull_frame, pull_up_to, text, GotPost,
    Pulled, Signer, Sp,
};
use crate::suite::ctx::{now_ms, CaseError, Ctx, Outcome, Session};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::{self, code, PROTOCOL_VERSION};

const PULL: &str = "The responder returns stored posts, in its own store order after the cursor `sinceSeq`, for which: the author is the requester's NodeId (own posts relayed back); or the post is public and the author is in `ids`; or the post is encrypted and a `WrappedKey.recipient` is in `ids` (recipient match).";
const OTHER_THAN_AUTHOR: &str = "the post is encrypted and one of its recipients other than its author is in `ids`, or the author is the requester itself";
const LIMIT: &str = "`posts`: At most the effective limit (request `limit`, else the responder's maxPullBatch) [...] `more`: True if the responder stopped early (limit or size); pull again at once.";
const CURSOR: &str = "`sinceSeq`: The responder's store cursor returned as `nextSeq` by the previous pull [...] `nextSeq`: the position after the last post examined.";

/// Why `p` may not be sent to `requester` asking for `ids`, if so.
fn not_allowed(p: &GotPost, requester: &[u8; 32], ids: &[[u8; 32]]) -> Option<String> {
    if p.author == requester {
        return None;
    }
    let in_ids = |x: &[u8]| ids.iter().any(|i| i[..] == *x);
    match &p.recipients {
        None if in_ids(&p.author) => None,
        None => Some(format!(
            "public post {} by {} not in ids",
            hex::encode(p.id()),
            hex::encode(&p.author)
        )),
        Some(r) if r.iter().any(|x| *x != p.author && in_ids(x)) => None,
        Some(_) => Some(format!(
            "encrypted post {} with no recipient other than its author in ids",
            hex::encode(p.id())
        )),
    }
}

/// Every post allowed and independently valid.
fn judge(got: &Pulled, requester: &[u8; 32], ids: &[[u8; 32]]) -> Result<usize, String> {
    for p in &got.posts {
        if let Some(why) = not_allowed(p, requester, ids) {
            return Err(why);
        }
        p.check()
            .map_err(|e| format!("post {}: {e}", hex::encode(p.id())))?;
    }
    Ok(got.posts.len())
}

/// A PushPost of an encrypted post by fixture `author`, sealed for fixture
/// `recipient` and the author: (PostId, frame). Built with
/// `distsoc-protocol` (sealing is pinned by the envelope vectors); what comes
/// back is judged by the suite's own checks.
fn sealed_push(ctx: &mut Ctx, author: u8, recipient: u8) -> Result<([u8; 32], Vec<u8>), CaseError> {
    use distsoc_protocol::ids::PostingId;
    use distsoc_protocol::messages::content::{seal_post, PostBody, SyncPost};
    use distsoc_protocol::messages::social::PushPost;
    use distsoc_protocol::messages::Message;
    use distsoc_protocol::sign::SigningKey;
    let key = SigningKey::from_seed(&super::post::fixture_seed(author));
    let to = SigningKey::from_seed(&super::post::fixture_seed(recipient));
    let body = PostBody {
        text: text(ctx, "sealed deposit"),
        attachments: vec![],
        rotation: None,
        archive: None,
        group: None,
    };
    let setup = |e: String| CaseError::Setup(format!("building the encrypted post: {e}"));
    let (post, vis) = seal_post(
        &key,
        now_ms(),
        &body,
        &[PostingId(to.public()), PostingId(key.public())],
        ctx.rng(),
    )
    .map_err(|e| setup(e.to_string()))?;
    let sp = SyncPost::new(&key, post, vis, None);
    let id = sp.post_id().0;
    let frame = Message::from(PushPost {
        version: PROTOCOL_VERSION,
        post: sp,
        recent: None,
    })
    .to_frame()
    .map_err(|e| setup(e.to_string()))?;
    Ok((id, frame))
}

const DELETES: &str = "`deletes`: the delete records stored after `sinceSeq` whose deleted post the requester would have been sent [...] A responder that honours a delete stops serving the post.";
const DELETE_SIG: &str = "A `DeleteRecord` is verified by its author's signature (purpose `delete`) before anything is stored; `Ack` means validated and accepted.";

/// A DeleteRecord push by fixture `author` for `post_id`; with
/// `break_sig`, the signature's first byte is flipped.
fn delete_frame(author: u8, post_id: [u8; 32], break_sig: bool) -> Result<Vec<u8>, CaseError> {
    use distsoc_protocol::ids::{PostId, PostingId};
    use distsoc_protocol::messages::content::{sign_checked, DeleteRecordBody};
    use distsoc_protocol::messages::signed::Signed;
    use distsoc_protocol::messages::social::DeleteRecord;
    use distsoc_protocol::messages::Message;
    use distsoc_protocol::sign::SigningKey;
    let setup = |e: String| CaseError::Setup(format!("building the delete record: {e}"));
    let key = SigningKey::from_seed(&super::post::fixture_seed(author));
    let mut record = sign_checked(
        DeleteRecordBody {
            post_id: PostId(post_id),
            author: PostingId(key.public()),
            deleted_at_ms: now_ms(),
            replaced_by: None,
        },
        &key,
    )
    .map_err(|e| setup(e.to_string()))?;
    if break_sig {
        let mut sig = *record.signature();
        sig[0] ^= 1;
        record = Signed::from_parts_unchecked(record.body().clone(), record.bytes().to_vec(), sig);
    }
    Message::from(DeleteRecord {
        version: PROTOCOL_VERSION,
        record,
    })
    .to_frame()
    .map_err(|e| setup(e.to_string()))
}

/// The post ids of the pulled delete records, each checked independently:
/// its signature by its `author` (purpose `delete`).
fn deleted_ids(got: &Pulled) -> Result<Vec<[u8; 32]>, String> {
    use distsoc_schema::content_capnp::delete_record_body;
    let mut out = Vec::new();
    for (bytes, sig) in &got.deletes {
        let (post_id, author) =
            super::post::read_canonical::<delete_record_body::Owned, _>(bytes, |r| {
                Ok((r.get_post_id()?.to_vec(), r.get_author()?.to_vec()))
            })?;
        super::post::verify(&author, "delete", bytes, sig)?;
        let id: [u8; 32] = post_id
            .try_into()
            .map_err(|_| "a delete record with a post id that is not 32 bytes".to_string())?;
        out.push(id);
    }
    Ok(out)
}

/// After `post` was deleted by its author: a fresh pull for `ids` must not
/// return it and must carry its (valid) delete record.
async fn judge_deleted(
    ctx: &mut Ctx,
    post: [u8; 32],
    ids: &[[u8; 32]],
) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let expected =
        "the deleted post is not returned; its delete record is in `deletes`, signed by the author";
    let outcome = match pull_all(&s, ids, 0).await {
        Ok(got) if got.has(&post) => Outcome::fail(expected, "the deleted post is still served"),
        Ok(got) => match deleted_ids(&got) {
            Ok(d) if d.contains(&post) => Outcome::pass(
                expected,
                format!("{} deletes, the post's among them", d.len()),
            ),
            Ok(d) => Outcome::fail(expected, format!("{} deletes, not the post's", d.len())),
            Err(e) => Outcome::fail(expected, e),
        },
        Err(e) => Outcome::fail(expected, e),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

async fn push_n(ctx: &mut Ctx, s: &Session, a: &Signer, n: usize) -> Result<Vec<Sp>, String> {
    let mut out = Vec::new();
    for i in 0..n {
        let sp = Sp::public(a, &text(ctx, &format!("sync {i}")));
        is_ack(&s.request(&sp.push()).await).map_err(|e| format!("push {i}: {e}"))?;
        out.push(sp);
    }
    Ok(out)
}

/// A session where posts by fixture `n` are accepted, with `k` fresh posts
/// pushed; or the verdict.
async fn with_posts(
    ctx: &mut Ctx,
    n: u8,
    k: usize,
) -> Result<Result<(Session, Signer, Vec<Sp>), Outcome>, CaseError> {
    let a = Signer::fixture(n);
    let s = match accepting_session(ctx, &a).await? {
        Ok(s) => s,
        Err(o) => return Ok(Err(o)),
    };
    match push_n(ctx, &s, &a, k).await {
        Ok(v) => Ok(Ok((s, a, v))),
        Err(e) => {
            let usable = ctx.still_usable(&s).await;
            Ok(Err(
                Outcome::fail("valid posts are acknowledged", e).and_usable(usable)
            ))
        }
    }
}

/// Posts [`check_filter`] judges at most (whole pages, from the start of the
/// target's store): the fixture authors' posts accumulate over runs against
/// one live target, and the case must take the same time in every run.
const MAX_JUDGED: usize = 200;
/// Page size of those pulls.
const JUDGED_PAGE: u16 = 50;

async fn check_filter(ctx: &mut Ctx, ids: Vec<[u8; 32]>, what: &str) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let expected = format!("{what}: every returned post (the first pages, about {MAX_JUDGED}) is one the requester may receive and verifies (PostId, signatures)");
    let outcome = match pull_up_to(&s, &ids, 0, JUDGED_PAGE, MAX_JUDGED).await {
        Ok(got) => match judge(&got, &s.client_id, &ids) {
            Ok(n) => Outcome::pass(&expected, format!("{n} posts, all allowed and valid")),
            Err(e) => Outcome::fail(&expected, e),
        },
        Err(e) => Outcome::fail(&expected, e),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

/// The SYNC cases.
#[allow(clippy::too_many_lines)]
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Limit, Negative, Positive};
    use Level::Must;
    const CAP: Option<&str> = Some("pull-sync/1");
    vec![
        def("SYNC-7-001", Must, Positive, Role::Any, CAP, "a stored public post is returned to another requester whose ids list its author", "schema/README.md §7", PULL)
            .run(|ctx| Box::pin(async move {
                let (s0, a, posts) = match with_posts(ctx, 1, 1).await? { Ok(x) => x, Err(o) => return Ok(o) };
                drop(s0);
                let s = ctx.connect().await?;
                let ids = [a.public()];
                let expected = "the post is in the pull, every returned post allowed and valid";
                let outcome = match pull_all(&s, &ids, 0).await {
                    Ok(got) if !posts.iter().all(|p| got.has(&p.id())) => Outcome::fail(expected, format!("{} posts, not the pushed one", got.posts.len())),
                    Ok(got) => match judge(&got, &s.client_id, &ids) {
                        Ok(n) => Outcome::pass(expected, format!("returned among {n} posts")),
                        Err(e) => Outcome::fail(expected, e),
                    },
                    Err(e) => Outcome::fail(expected, e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("SYNC-7-002", Must, Negative, Role::Any, CAP, "a public post is not returned when its author is not in ids (and is not the requester)", "schema/README.md §7", PULL)
            .run(|ctx| Box::pin(async move {
                let (_s0, a, posts) = match with_posts(ctx, 1, 1).await? { Ok(x) => x, Err(o) => return Ok(o) };
                let s = ctx.connect().await?;
                let ids = [ctx.random32(), Signer::fixture(2).public()];
                let expected = "the post is not returned; every returned post allowed";
                let outcome = match pull_all(&s, &ids, 0).await {
                    Ok(got) if posts.iter().any(|p| got.has(&p.id())) => Outcome::fail(expected, format!("the post by {} was returned", hex::encode(a.public()))),
                    Ok(got) => match judge(&got, &s.client_id, &ids) {
                        Ok(n) => Outcome::pass(expected, format!("not returned ({n} other posts)")),
                        Err(e) => Outcome::fail(expected, e),
                    },
                    Err(e) => Outcome::fail(expected, e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("SYNC-7-003", Must, Positive, Role::Any, CAP, "own posts are relayed back: the author's NodeId gets its post with an empty ids list", "schema/README.md §7", PULL)
            .run(|ctx| Box::pin(async move {
                let (s0, _a, posts) = match with_posts(ctx, 1, 1).await? { Ok(x) => x, Err(o) => return Ok(o) };
                drop(s0);
                let s = ctx.connect_as(super::post::fixture_seed(1)).await?;
                let expected = "the requester's own post is returned for ids = []";
                let outcome = match pull_all(&s, &[], 0).await {
                    Ok(got) if posts.iter().all(|p| got.has(&p.id())) => match judge(&got, &s.client_id, &[]) {
                        Ok(n) => Outcome::pass(expected, format!("returned among {n}")),
                        Err(e) => Outcome::fail(expected, e),
                    },
                    Ok(got) => Outcome::fail(expected, format!("{} posts, not the own one", got.posts.len())),
                    Err(e) => Outcome::fail(expected, e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("SYNC-7-004", Must, Positive, Role::Any, CAP, "every post returned for the target's NodeId and the fixture ids is allowed and verifies independently", "schema/README.md §7", PULL)
            .run(|ctx| Box::pin(async move {
                let mut ids = vec![ctx.target.node_id];
                ids.extend(fixture_ids());
                check_filter(ctx, ids, "ids = target NodeId + fixture ids").await
            })),
        def("SYNC-7-005", Must, Negative, Role::Any, CAP, "ids = [the target's NodeId]: no encrypted post whose only listed recipient is its author (self-wrap excluded)", "schema/README.md §7", OTHER_THAN_AUTHOR)
            .run(|ctx| Box::pin(async move {
                let ids = vec![ctx.target.node_id];
                check_filter(ctx, ids, "ids = [target NodeId]").await
            })),
        def("SYNC-7-006", Must, Positive, Role::Any, CAP, "recipient match: an encrypted post wrapped for an id in ids is returned", "schema/README.md §7", PULL)
            .run(|ctx| Box::pin(async move {
                let r = Signer::fixture(3).public();
                let s = ctx.connect().await?;
                // Deposit one (an anchor stores encrypted posts for
                // recipient-match pull; a user node refuses them with
                // `unauthorized` and then has to hold one of its own).
                let deposit = sealed_push(ctx, 0, 3)?;
                let deposited = is_ack(&s.request(&deposit.1).await).is_ok();
                let got = pull_all(&s, &[r], 0).await.map_err(CaseError::Setup)?;
                if deposited && !got.posts.iter().any(|p| p.id() == deposit.0) {
                    let usable = ctx.still_usable(&s).await;
                    return Ok(Outcome::fail(
                        "the acknowledged encrypted post for the recipient is returned",
                        format!("{} posts, not the deposited {}", got.posts.len(), hex::encode(deposit.0)),
                    ).and_usable(usable));
                }
                let mine: Vec<&GotPost> = got.posts.iter().filter(|p| p.recipients.as_ref().is_some_and(|l| l.iter().any(|x| *x == r))).collect();
                if mine.is_empty() {
                    return Err(CaseError::Skipped("the target refused the deposited encrypted post and holds none for fixture recipient 3".into()));
                }
                let expected = "encrypted posts for the recipient are returned, allowed and valid";
                let outcome = match judge(&got, &s.client_id, &[r]) {
                    Ok(n) => Outcome::pass(expected, format!("{} encrypted for the recipient among {n}", mine.len())),
                    Err(e) => Outcome::fail(expected, e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("SYNC-7-007", Must, Positive, Role::Any, CAP, "sinceSeq is honoured: a pull from the previous nextSeq returns the new post and none of the earlier ones", "schema/README.md §7", CURSOR)
            .run(|ctx| Box::pin(async move {
                let (s, a, _) = match with_posts(ctx, 1, 1).await? { Ok(x) => x, Err(o) => return Ok(o) };
                let ids = [a.public()];
                let before = pull_all(&s, &ids, 0).await.map_err(CaseError::Setup)?;
                let new = match push_n(ctx, &s, &a, 1).await { Ok(v) => v, Err(e) => return Ok(Outcome::fail("push acknowledged", e)) };
                let expected = "the pull after the cursor has the new post and no post returned before";
                let outcome = match pull_all(&s, &ids, before.next_seq).await {
                    Ok(after) => {
                        let dup = after.posts.iter().find(|p| before.has(&p.id()));
                        match (new.iter().all(|p| after.has(&p.id())), dup) {
                            (true, None) => Outcome::pass(expected, format!("{} posts after cursor {}", after.posts.len(), before.next_seq)),
                            (false, _) => Outcome::fail(expected, "the new post is missing after the cursor"),
                            (true, Some(p)) => Outcome::fail(expected, format!("post {} returned again after the cursor", hex::encode(p.id()))),
                        }
                    }
                    Err(e) => Outcome::fail(expected, e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("SYNC-7-008", Must, Limit, Role::Any, CAP, "limit = 1 with at least 3 matching posts: at most 1 post and more = true", "schema/README.md §7", LIMIT)
            .run(|ctx| Box::pin(async move {
                let (s, a, _) = match with_posts(ctx, 1, 3).await? { Ok(x) => x, Err(o) => return Ok(o) };
                let expected = "≤ 1 post and more = true";
                let outcome = match pull(&s, &[a.public()], 0, 1).await {
                    Ok(p) => Outcome::check(p.posts.len() <= 1 && p.more, expected, format!("{} posts, more = {}", p.posts.len(), p.more)),
                    Err(e) => Outcome::fail(expected, e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("SYNC-7-009", Must, Limit, Role::Any, CAP, "paging with limit = 1 and nextSeq returns every matching post once", "schema/README.md §7", CURSOR)
            .run(|ctx| Box::pin(async move {
                let (s, a, posts) = match with_posts(ctx, 1, 3).await? { Ok(x) => x, Err(o) => return Ok(o) };
                let ids = [a.public()];
                let start = pull_all(&s, &ids, 0).await.map_err(CaseError::Setup)?;
                // Cursor just before our three: page from 0 would take long on a big store;
                // page from the cursor before them, found by pulling all and re-paging.
                let expected = "every pushed post exactly once over limit-1 pages; nextSeq never goes back";
                let mut seen: Vec<[u8; 32]> = Vec::new();
                let mut cursor = 0;
                let mut pages = 0;
                let mut err = None;
                while pages < start.posts.len() + 8 {
                    pages += 1;
                    match pull(&s, &ids, cursor, 1).await {
                        Ok(p) if p.posts.len() > 1 => { err = Some(format!("{} posts on a limit-1 page", p.posts.len())); break; }
                        Ok(p) => {
                            if p.next_seq < cursor { err = Some(format!("nextSeq {} < sinceSeq {cursor}", p.next_seq)); break; }
                            seen.extend(p.posts.iter().map(GotPost::id));
                            cursor = p.next_seq;
                            if !p.more { break; }
                        }
                        Err(e) => { err = Some(e); break; }
                    }
                }
                let outcome = match err {
                    Some(e) => Outcome::fail(expected, e),
                    None => {
                        let once = posts.iter().all(|p| seen.iter().filter(|x| **x == p.id()).count() == 1);
                        Outcome::check(once, expected, format!("{pages} pages, {} posts, each pushed post once: {once}", seen.len()))
                    }
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("SYNC-7-010", Must, Negative, Role::Any, CAP, "a PullSyncRequest with 4,097 ids is refused tooLarge", "schema/README.md §7", "`ids`: [...] At most 4,096. [§10: list and text fields — tooLarge; frame cap 64 KiB]")
            .run(|ctx| Box::pin(async move {
                let ids: Vec<[u8; 32]> = (0..4097u32).map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes()).collect();
                super::refuse(ctx, &pull_frame(&ids, 0, 0), &["tooLarge"]).await
            })),
        def("SYNC-7-011", Must, Limit, Role::Any, CAP, "a PullSyncRequest with 1,200 ids (under every cap) is served", "schema/README.md §7", "`ids`: [...] At most 4,096.")
            .run(|ctx| Box::pin(async move {
                let ids: Vec<[u8; 32]> = (0..1200u32).map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes()).collect();
                super::served(ctx, &pull_frame(&ids, 0, 0), code::PULL_SYNC_RESPONSE, "PullSyncRequest with 1,200 ids").await
            })),
        def("SYNC-3-012", Must, Negative, Role::Any, CAP, "a PullSyncRequest with version 3 is refused unsupportedVersion", "schema/README.md §3", "A receiver answers a version outside its range with `Error(unsupportedVersion)` (with its `minVersion`/`maxVersion`) before looking at the rest of the message.")
            .run(|ctx| Box::pin(async move {
                let f = wire::build::<distsoc_schema::social_capnp::pull_sync_request::Owned, _>(code::PULL_SYNC_REQUEST, |mut b| {
                    b.set_version(3);
                    b.init_ids(0);
                });
                super::refuse(ctx, &f, &["unsupportedVersion"]).await
            })),
        def("SYNC-7-013", Must, Negative, Role::Any, CAP, "a PullSyncRequest with a 31-byte id is malformed", "schema/README.md §7", "Ids are `Data` of a fixed length [...] A wrong length is rejected as `malformed`.")
            .run(|ctx| Box::pin(async move {
                let id = ctx.random32();
                let f = wire::build::<distsoc_schema::social_capnp::pull_sync_request::Owned, _>(code::PULL_SYNC_REQUEST, |mut b| {
                    b.set_version(2);
                    b.init_ids(1).set(0, &id[..31]);
                });
                super::refuse(ctx, &f, &["malformed"]).await
            })),
        def("SYNC-7-014", Must, Positive, Role::Any, CAP, "ids = one fixture id alone: every returned post is allowed for that id (encrypted only with another recipient in ids)", "schema/README.md §7", OTHER_THAN_AUTHOR)
            .run(|ctx| Box::pin(async move {
                check_filter(ctx, vec![Signer::fixture(3).public()], "ids = [fixture 3]").await
            })),
        def("SYNC-7-500", Must, Positive, Role::Any, CAP, "deletes served by pull: after the author's DeleteRecord the post is no longer returned and the delete is, to a requester whose ids list the author", "schema/README.md §7", DELETES)
            .run(|ctx| Box::pin(async move {
                let (s, _a, posts) = match with_posts(ctx, 1, 1).await? { Ok(x) => x, Err(o) => return Ok(o) };
                let id = posts[0].id();
                if let Err(e) = is_ack(&s.request(&delete_frame(1, id, false)?).await) {
                    let usable = ctx.still_usable(&s).await;
                    return Ok(Outcome::fail("the author's valid DeleteRecord is acknowledged", e).and_usable(usable));
                }
                drop(s);
                judge_deleted(ctx, id, &[Signer::fixture(1).public()]).await
            })),
        def("SYNC-7-501", Must, Positive, Role::Any, CAP, "deletes served by pull: the delete of an encrypted post reaches its recipient by recipient match, and the post is no longer returned", "schema/README.md §7", DELETES)
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let (id, frame) = sealed_push(ctx, 0, 3)?;
                if is_ack(&s.request(&frame).await).is_err() {
                    return Err(CaseError::Skipped("the target does not accept encrypted posts by push (a user node: recipients pull them from their author)".into()));
                }
                if let Err(e) = is_ack(&s.request(&delete_frame(0, id, false)?).await) {
                    let usable = ctx.still_usable(&s).await;
                    return Ok(Outcome::fail("the author's valid DeleteRecord is acknowledged", e).and_usable(usable));
                }
                drop(s);
                judge_deleted(ctx, id, &[Signer::fixture(3).public()]).await
            })),
        def("SYNC-7-502", Must, Negative, Role::Any, None, "a DeleteRecord whose signature does not verify is refused badSignature, never acknowledged", "schema/README.md §7", DELETE_SIG)
            .run(|ctx| Box::pin(async move {
                let id = ctx.random32();
                super::refuse(ctx, &delete_frame(1, id, true)?, &["badSignature"]).await
            })),
    ]
}
