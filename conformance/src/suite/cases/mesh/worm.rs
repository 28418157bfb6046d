//! The worm (§13.5): decoding rules, ttl 0 never forwarded, duplicates and
//! loops answered empty, `WormQuery` answered from the local map without
//! fan-out, the fan-out and forward step of a relay, and the rate limits.

use std::time::{Duration, Instant};

use super::harness::{
    address_request_frame, doc_addr, hex8, map_frame, read_worm_query_id, read_worm_request,
    read_worm_response, worm_query_frame, worm_request_frame, Got, Id, Tester, Worm, WormAnswer,
};
use super::{refused, tri};
use crate::suite::client::Reply;
use crate::suite::ctx::{expect_error, CaseError, Ctx, Outcome};
use crate::suite::model::Role;
use crate::suite::wire::code;

fn worm_id(ctx: &mut Ctx) -> [u8; 16] {
    let mut id = [0; 16];
    id.copy_from_slice(&ctx.random32()[..16]);
    id
}

/// A WormRequest from `from` (originator = `from`) for `targets`.
fn worm(ctx: &mut Ctx, from: &Tester, targets: Vec<Id>, ttl: u8) -> Worm {
    Worm {
        id: worm_id(ctx).to_vec(),
        targets,
        ttl,
        originator: Some(from.id),
        visited: Vec::new(),
    }
}

fn is_worm_request(g: &Got) -> bool {
    g.code == code::WORM_REQUEST
}

fn is_worm_query(g: &Got) -> bool {
    g.code == code::WORM_QUERY
}

/// A worm answer with neither hits nor `closest`.
fn empty(w: &WormAnswer) -> bool {
    w.hits.is_empty() && w.closest.is_none()
}

// ---- decoding ---------------------------------------------------------------------

async fn refuse_worm(
    ctx: &mut Ctx,
    w: impl FnOnce(&mut Ctx, &Tester) -> Worm,
    allowed: &[&str],
    what: &str,
) -> Result<Outcome, CaseError> {
    let a = Tester::connect(ctx, &[]).await?;
    let w = w(ctx, &a);
    let reply = a.exchange(&worm_request_frame(&w)).await;
    Ok(refused(ctx, &a, &reply, allowed, what).await)
}

/// MESH-13.5-030.
pub(super) async fn ttl6(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    refuse_worm(
        ctx,
        |ctx, a| {
            let t = ctx.random_node_id();
            worm(ctx, a, vec![t], 6)
        },
        &["malformed"],
        "WormRequest with ttl 6",
    )
    .await
}

/// MESH-13.5-031.
pub(super) async fn short_id(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    refuse_worm(
        ctx,
        |ctx, a| {
            let t = ctx.random_node_id();
            let mut w = worm(ctx, a, vec![t], 0);
            w.id.pop();
            w
        },
        &["malformed"],
        "WormRequest with a 15-byte wormId",
    )
    .await
}

/// MESH-13.5-032.
pub(super) async fn no_originator(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    refuse_worm(
        ctx,
        |ctx, a| {
            let t = ctx.random_node_id();
            let mut w = worm(ctx, a, vec![t], 0);
            w.originator = None;
            w
        },
        &["malformed"],
        "WormRequest without originator",
    )
    .await
}

/// MESH-13.5-033.
pub(super) async fn targets_over(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    refuse_worm(
        ctx,
        |ctx, a| {
            let t: Vec<Id> = (0..17).map(|_| ctx.random32()).collect();
            worm(ctx, a, t, 0)
        },
        &["tooLarge"],
        "WormRequest with 17 targets",
    )
    .await
}

/// MESH-13.5-034.
pub(super) async fn visited_over(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    refuse_worm(
        ctx,
        |ctx, a| {
            let t = ctx.random_node_id();
            let mut w = worm(ctx, a, vec![t], 1);
            w.visited = (0..65).map(|_| ctx.random32()).collect();
            w
        },
        &["tooLarge"],
        "WormRequest with 65 visited",
    )
    .await
}

// ---- answers ----------------------------------------------------------------------

/// MESH-13.5-035.
pub(super) async fn ttl0_not_forwarded(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[]).await?;
    let mut b = Tester::peer(ctx, &[doc_addr(5001)]).await?;
    b.clear();
    let t = ctx.random_node_id();
    let w = worm(ctx, &a, vec![t], 0);
    let expected = "WormRequest ttl 0 for an unknown NodeId: a WormResponse with the same wormId and no hits; no WormRequest reaches the target's other peer";
    let reply = a.exchange(&worm_request_frame(&w)).await;
    let ans = tri!(read_worm_response(&reply), expected);
    // Only this worm counts: the target may run worms of its own
    // (bucket refresh, §13.6).
    let ours = |g: &Got| is_worm_request(g) && read_worm_request(g).is_ok_and(|f| f.id == w.id);
    let late = b.wait_for(ctx.timeouts.silence, ours).await;
    Ok(Outcome::check(
        ans.id == w.id && ans.hits.is_empty() && late.is_none(),
        expected,
        format!(
            "{ans}; wormId echoed: {}; this worm's WormRequests at the other peer: {}",
            ans.id == w.id,
            b.received().iter().filter(|g| ours(g)).count()
        ),
    ))
}

/// MESH-13.5-036.
pub(super) async fn duplicate_id(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[]).await?;
    let b = Tester::peer(ctx, &[doc_addr(5002)]).await?;
    let w = worm(ctx, &a, vec![b.id], 0);
    let expected = "the same WormRequest twice (its target is a peer with an address, ttl 0): the second, a wormId seen within 60 s, gets a WormResponse without hits or closest";
    let first = tri!(
        read_worm_response(&a.exchange(&worm_request_frame(&w)).await),
        expected
    );
    let second = tri!(
        read_worm_response(&a.exchange(&worm_request_frame(&w)).await),
        expected
    );
    Ok(Outcome::check(
        empty(&second) && second.id == w.id,
        expected,
        format!("first: {first}; second: {second}"),
    ))
}

/// MESH-13.5-037.
pub(super) async fn visited_self(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[]).await?;
    let b = Tester::peer(ctx, &[doc_addr(5003)]).await?;
    let mut w = worm(ctx, &a, vec![b.id], 1);
    w.visited = vec![a.id, ctx.target.node_id];
    let expected = "a WormRequest whose visited holds the target's own NodeId (its target a peer with an address): a WormResponse without hits or closest";
    let ans = tri!(
        read_worm_response(&a.exchange(&worm_request_frame(&w)).await),
        expected
    );
    Ok(Outcome::check(empty(&ans), expected, ans.to_string()))
}

/// MESH-13.5-038.
pub(super) async fn hop1_hit(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[]).await?;
    let b = Tester::peer(ctx, &[doc_addr(5004)]).await?;
    let anchor = ctx.role == Role::Anchor;
    let expected = if anchor {
        "WormQuery to an anchor for a peer that advertised 192.0.2.7:5004 (unreachable, so never verified): no hit (an anchor hands out only verified addresses, §12, §13.7; a node known without an address is not a hit, §13.5)"
    } else {
        "WormQuery for a peer that advertised 192.0.2.7:5004: a hit with target and holder = that peer, its advertised address, hops 1"
    };
    let q = worm_query_frame(&worm_id(ctx), &[b.id]);
    let ans = tri!(read_worm_response(&a.s.request(&q).await), expected);
    let ok = if anchor {
        ans.hits.iter().all(|h| h.target != b.id)
    } else {
        ans.hits.iter().any(|h| {
            h.target == b.id && h.holder == b.id && h.hops == 1 && h.addrs == [doc_addr(5004)]
        })
    };
    Ok(Outcome::check(ok, expected, ans.to_string()))
}

/// MESH-13.5-039.
pub(super) async fn hop2_hit(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let x = ctx.random_node_id();
    let a = Tester::connect(ctx, &[]).await?;
    a.knows(x, &[doc_addr(5005)]);
    let r = a
        .exchange(&map_frame(0, 0, 1, &[(x, vec![doc_addr(5005)])], &[], 0))
        .await;
    if let Err(e) = super::expect_ack(&r) {
        return Err(CaseError::Setup(format!(
            "the tester's map was not acknowledged: {e}"
        )));
    }
    let q = Tester::peer(ctx, &[]).await?;
    let expected = "a peer reports X at its hop 1 at 192.0.2.7:5005 (and answers AddressRequest for X with it): WormQuery for X from another peer gets a hit with target and holder X, that address, hops 2";
    // Reports may take a moment to apply.
    let started = Instant::now();
    let ans = loop {
        let ans = tri!(
            read_worm_response(&q.s.request(&worm_query_frame(&worm_id(ctx), &[x])).await),
            expected
        );
        if !ans.hits.is_empty() || started.elapsed() > Duration::from_secs(2) {
            break ans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ok = ans
        .hits
        .iter()
        .any(|h| h.target == x && h.holder == x && h.hops == 2 && h.addrs == [doc_addr(5005)]);
    Ok(Outcome::check(ok, expected, ans.to_string()))
}

/// MESH-13.5-040.
pub(super) async fn query_no_fanout(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[]).await?;
    let mut b = Tester::peer(ctx, &[doc_addr(5006)]).await?;
    b.clear();
    let t = ctx.random_node_id();
    let id = worm_id(ctx);
    let expected = "WormQuery for an unknown NodeId: a WormResponse with the same wormId and no hits; the target's other peer gets neither WormQuery nor WormRequest";
    let ans = tri!(
        read_worm_response(&a.s.request(&worm_query_frame(&id, &[t])).await),
        expected
    );
    // Only this id counts: the target may run worms of its own (§13.6).
    let late = b
        .wait_for(ctx.timeouts.silence, |g| {
            (is_worm_query(g) && read_worm_query_id(g).is_ok_and(|i| i == id))
                || (is_worm_request(g) && read_worm_request(g).is_ok_and(|f| f.id == id))
        })
        .await;
    Ok(Outcome::check(
        ans.id == id && ans.hits.is_empty() && late.is_none(),
        expected,
        format!(
            "{ans}; sent wormId {}; at the other peer: {}",
            hex::encode(id),
            late.map_or_else(
                || "nothing".to_string(),
                |g| format!(
                    "a frame 0x{:02x} on a {} stream, wormId {}",
                    g.code,
                    if g.uni {
                        "unidirectional"
                    } else {
                        "bidirectional"
                    },
                    read_worm_query_id(&g).map_or_else(|e| e, hex::encode)
                )
            )
        ),
    ))
}

/// Three peers A (the sender), B and C; A sends a ttl-1 WormRequest for an
/// unknown NodeId; returns the answer, the worm and what B and C received.
async fn relay(
    ctx: &mut Ctx,
) -> Result<(Result<WormAnswer, String>, Worm, Tester, Tester, Tester), CaseError> {
    let mut a = Tester::peer(ctx, &[]).await?;
    let mut b = Tester::peer(ctx, &[doc_addr(5010)]).await?;
    let mut c = Tester::peer(ctx, &[doc_addr(5011)]).await?;
    a.clear();
    b.clear();
    c.clear();
    let t = ctx.random_node_id();
    let w = worm(ctx, &a, vec![t], 1);
    let ans = read_worm_response(&a.exchange(&worm_request_frame(&w)).await);
    // Everything the target sent B and C arrived before its answer (they
    // are logged before they are answered); a short grace for stragglers.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = (a.received(), b.received(), c.received());
    Ok((ans, w, a, b, c))
}

fn queries(t: &mut Tester, id: &[u8]) -> usize {
    t.received()
        .iter()
        .filter(|g| is_worm_query(g) && read_worm_query_id(g).is_ok_and(|i| i == id))
        .count()
}

/// The WormRequests with wormId `id` the target sent `t` (the target may
/// run worms of its own, §13.6: those are not counted).
fn forwarded(t: &mut Tester, id: &[u8]) -> Vec<super::harness::SeenWorm> {
    t.received()
        .iter()
        .filter(|g| is_worm_request(g))
        .filter_map(|g| read_worm_request(g).ok())
        .filter(|f| f.id == id)
        .collect()
}

/// MESH-13.5-041.
pub(super) async fn fanout(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (ans, w, mut a, mut b, mut c) = relay(ctx).await?;
    let expected = "WormRequest ttl 1 from peer A for an unknown NodeId, peers B and C (worm/1): exactly one WormQuery with the worm's id to each of B and C, none to A (the sender); then a WormResponse to A";
    let ans = tri!(ans, expected);
    let (qa, qb, qc) = (
        queries(&mut a, &w.id),
        queries(&mut b, &w.id),
        queries(&mut c, &w.id),
    );
    Ok(Outcome::check(
        qa == 0 && qb == 1 && qc == 1,
        expected,
        format!("WormQueries: A {qa}, B {qb}, C {qc}; answer: {ans}"),
    ))
}

/// Skip when nothing reached B or C and the target has mesh peers besides
/// the case's testers: the forward may have gone to one of those, where
/// the suite cannot see it (a busy target such as the devnet's anchor).
async fn other_peers_hide_the_forward(ctx: &mut Ctx, ours: &[&Id]) -> Result<(), CaseError> {
    let Ok((hop1, probe)) = super::map::hop1_seen_by_new_peer(ctx).await else {
        return Ok(());
    };
    let others = hop1
        .iter()
        .filter(|(n, _)| !ours.iter().any(|o| o[..] == n[..]) && n[..] != probe.id[..])
        .count();
    if others > 0 {
        return Err(CaseError::Skipped(format!(
            "the worm reached neither B nor C, and the target has {others} other mesh peer(s) it may have chosen: the forward cannot be observed"
        )));
    }
    Ok(())
}

/// MESH-13.5-042.
pub(super) async fn forward(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (ans, w, mut a, mut b, mut c) = relay(ctx).await?;
    let expected = "WormRequest ttl 1 from peer A for an unknown NodeId, peers B and C: exactly one WormRequest forwarded, to B or C (never A), with ttl 0, the same wormId, targets and originator, and visited = A's visited + the target's NodeId";
    let ans = tri!(ans, expected);
    let fa = forwarded(&mut a, &w.id);
    let mut all = forwarded(&mut b, &w.id);
    all.extend(forwarded(&mut c, &w.id));
    let me = ctx.target.node_id.to_vec();
    let good = |f: &super::harness::SeenWorm| {
        f.ttl == 0
            && f.id == w.id
            && f.targets == w.targets.iter().map(|t| t.to_vec()).collect::<Vec<_>>()
            && Some(f.originator.as_slice()) == w.originator.as_ref().map(|o| &o[..])
            && f.visited == [me.clone()]
    };
    if all.is_empty() && fa.is_empty() {
        other_peers_hide_the_forward(ctx, &[&a.id, &b.id, &c.id]).await?;
    }
    let ok = fa.is_empty() && all.len() == 1 && good(&all[0]);
    Ok(Outcome::check(
        ok,
        expected,
        format!(
            "to A: {}; to B/C: {} [{}]; answer to A: {ans}",
            fa.len(),
            all.len(),
            all.iter()
                .map(|f| format!(
                    "ttl {}, visited [{}], same id {}, originator {}",
                    f.ttl,
                    f.visited
                        .iter()
                        .map(|v| hex8(v))
                        .collect::<Vec<_>>()
                        .join(", "),
                    f.id == w.id,
                    hex8(&f.originator)
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    ))
}

/// MESH-13.5-043.
pub(super) async fn forward_closest(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (ans, w, a, mut b, mut c) = relay(ctx).await?;
    let t = w.targets[0];
    let dist = |id: &Id| -> [u8; 32] {
        let mut d = [0; 32];
        for i in 0..32 {
            d[i] = id[i] ^ t[i];
        }
        d
    };
    let closer_is_b = dist(&b.id) < dist(&c.id);
    let expected = format!(
        "the worm (ttl 1, target unknown, B and C peers with empty reports) is forwarded to the peer XOR-closer to the target: {}",
        if closer_is_b { "B" } else { "C" }
    );
    let _ = tri!(ans, expected);
    let (nb, nc) = (
        forwarded(&mut b, &w.id).len(),
        forwarded(&mut c, &w.id).len(),
    );
    if nb + nc == 0 {
        other_peers_hide_the_forward(ctx, &[&a.id, &b.id, &c.id]).await?;
    }
    Ok(Outcome::check(
        if closer_is_b {
            nb == 1 && nc == 0
        } else {
            nb == 0 && nc == 1
        },
        expected,
        format!("forwarded to B: {nb}, to C: {nc}"),
    ))
}

/// Who the forward-step case has a peer report at its hop 1.
#[derive(Clone, Copy)]
pub(super) enum Reported {
    /// The target itself.
    Target,
    /// The sender, one of the target's own peers.
    Sender,
}

/// MESH-13.5-049 and MESH-13.5-056. Peers A (the sender), B and C; the
/// worm's target T is the reported node X (the target itself, or A) with
/// its last bit flipped, so X is XOR-closer to T than anyone else; the peer
/// of B and C farther from T reports X at its hop 1, and a marker node M
/// (the complement of T: farther from T than anyone) whose hit confirms
/// the report was applied. A report's entries for the relay itself or for
/// one of its peers are no candidates, so the worm goes to the nearer of B
/// and C; a relay that took the report of X as a way to X would send it to
/// the farther one.
pub(super) async fn forward_skips_reported(
    ctx: &mut Ctx,
    who: Reported,
) -> Result<Outcome, CaseError> {
    let mut a = Tester::peer(ctx, &[]).await?;
    let x: Id = match who {
        Reported::Target => ctx.target.node_id,
        Reported::Sender => a.id,
    };
    let mut t = x;
    t[31] ^= 1;
    let m: Id = t.map(|b| !b);
    let dist = |id: &Id| -> Id { std::array::from_fn(|i| id[i] ^ t[i]) };
    // Both connect without a map; the farther from T reports X.
    let p1 = Tester::connect(ctx, &[doc_addr(5012)]).await?;
    let p2 = Tester::connect(ctx, &[doc_addr(5013)]).await?;
    let (mut far, mut near) = if dist(&p1.id) > dist(&p2.id) {
        (p1, p2)
    } else {
        (p2, p1)
    };
    let wait = ctx.timeouts.reply.min(Duration::from_secs(2));
    let _ = near.s.conn.send_uni(&map_frame(0, 0, 1, &[], &[], 0)).await;
    let _ = near.map_chunks(wait).await;
    let name = match who {
        Reported::Target => "the target itself",
        Reported::Sender => "the sender A, a peer of the target",
    };
    let expected = format!(
        "worm (ttl 1) from A for T = X with its last bit flipped, X = {name}; the peer farther from T reports X at its hop 1: X is no candidate through that report (a peer is reached only directly, the relay itself not at all), so the worm is forwarded to the nearer peer"
    );
    far.knows(m, &[doc_addr(5014)]);
    let r = far
        .exchange(&map_frame(
            0,
            0,
            1,
            &[(x, vec![doc_addr(5015)]), (m, vec![doc_addr(5014)])],
            &[],
            0,
        ))
        .await;
    if let Err(e) = super::expect_ack(&r) {
        return Err(CaseError::Setup(format!(
            "the reporting tester's map was not acknowledged: {e}"
        )));
    }
    let _ = far.map_chunks(wait).await;
    // The report is applied once M (at the target's hop 2) is a hit.
    let started = Instant::now();
    loop {
        let ans = read_worm_response(&a.s.request(&worm_query_frame(&worm_id(ctx), &[m])).await);
        if ans.is_ok_and(|a| !a.hits.is_empty()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(2) {
            return Err(CaseError::Setup(
                "the reporting tester's map was never applied: no hit for its hop-1 node".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.clear();
    far.clear();
    near.clear();
    let w = worm(ctx, &a, vec![t], 1);
    let ans = read_worm_response(&a.exchange(&worm_request_frame(&w)).await);
    let _ = tri!(ans, expected);
    // Logged before answered; a short grace for stragglers, as `relay`.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (nf, nn, na) = (
        forwarded(&mut far, &w.id).len(),
        forwarded(&mut near, &w.id).len(),
        forwarded(&mut a, &w.id).len(),
    );
    if nf + nn + na == 0 {
        other_peers_hide_the_forward(ctx, &[&a.id, &far.id, &near.id]).await?;
    }
    Ok(Outcome::check(
        nn == 1 && nf == 0 && na == 0,
        expected,
        format!(
            "forwarded to the nearer peer: {nn}, to the reporting (farther) peer: {nf}, to A: {na}"
        ),
    ))
}

// ---- rate limits ------------------------------------------------------------------
//
// A target may have other limits besides the mesh's per-minute buckets (an
// anchor's per-second limit per identity and per IP share, §9, with many
// fresh identities per case on one IP). Such a refusal has a short
// `retryAfterMs` (at most a second); the cases wait it out and resend, and
// judge only refusals that can be the mesh's own.

/// The `retryAfterMs` of a `rateLimited` reply.
fn rate_limited(reply: &Reply) -> Option<u32> {
    expect_error(reply, &["rateLimited"])
        .ok()
        .map(|e| e.retry_after_ms)
}

/// Sends `frame`; while the reply is `rateLimited` with `retryAfterMs` ≤
/// 1 s (a per-second limit, not a per-minute one) waits it out and resends
/// (at most 20 times).
async fn past_short_limits(t: &Tester, frame: &[u8]) -> Reply {
    let mut reply = t.exchange(frame).await;
    for _ in 0..20 {
        match rate_limited(&reply) {
            Some(ms) if ms <= 1000 => {
                tokio::time::sleep(Duration::from_millis(u64::from(ms) + 5)).await;
                reply = t.exchange(frame).await;
            }
            _ => break,
        }
    }
    reply
}

fn served(reply: &Reply, response: u8) -> bool {
    matches!(reply, Reply::Finished(b) if b.first() == Some(&response))
}

/// The verdict on the refusal that ended a burst: it must be
/// `rateLimited` with `retryAfterMs` ≥ 1, after at least `limit` and at
/// most `limit` + what the bucket refilled (`per_s` a second) served.
fn rate_verdict(
    expected: &str,
    ended: Option<Reply>,
    served_n: usize,
    limit: usize,
    per_s: f64,
    secs: f64,
) -> Outcome {
    let Some(reply) = ended else {
        return Outcome::fail(
            expected,
            format!("{served_n} served, never refused ({secs:.1} s)"),
        );
    };
    let most = limit + 1 + (secs * per_s).ceil() as usize;
    match expect_error(&reply, &["rateLimited"]) {
        Ok(e) => Outcome::check(
            served_n >= limit && served_n <= most && e.retry_after_ms >= 1,
            expected,
            format!(
                "{served_n} served, then {e}, retryAfterMs {} ({secs:.1} s)",
                e.retry_after_ms
            ),
        ),
        Err(got) => Outcome::fail(
            expected,
            format!("{served_n} served, then {got} ({secs:.1} s)"),
        ),
    }
}

/// MESH-13.5-044.
pub(super) async fn worm_rate_connection(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[]).await?;
    let expected = "WormRequests (ttl 0, unknown targets, fresh wormIds) in a burst on one connection: 20 are answered, the 21st (or one more per 3 s of burst) gets Error(rateLimited) with retryAfterMs ≥ 1 (refusals with retryAfterMs ≤ 1 s, from a per-second limit, are waited out)";
    let started = Instant::now();
    let mut n = 0;
    let mut ended = None;
    for _ in 0..30 {
        let t = ctx.random_node_id();
        let f = worm_request_frame(&worm(ctx, &a, vec![t], 0));
        let reply = past_short_limits(&a, &f).await;
        if served(&reply, code::WORM_RESPONSE) {
            n += 1;
        } else {
            ended = Some(reply);
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(rate_verdict(expected, ended, n, 20, 20.0 / 60.0, secs))
}

/// MESH-13.5-045.
pub(super) async fn worm_rate_originator(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[]).await?;
    let b = Tester::peer(ctx, &[]).await?;
    let origin = ctx.random_node_id();
    let expected = "20 WormRequests claiming originator O on connection A are answered; then on connection B, one claiming O gets Error(rateLimited) while one claiming another originator is answered (refusals with retryAfterMs ≤ 1 s, from a per-second limit, are waited out)";
    for i in 1..=20 {
        let t = ctx.random_node_id();
        let mut w = worm(ctx, &a, vec![t], 0);
        w.originator = Some(origin);
        let r = past_short_limits(&a, &worm_request_frame(&w)).await;
        if let Err(e) = read_worm_response(&r) {
            return Ok(Outcome::fail(expected, format!("#{i} on A got {e}")));
        }
    }
    let t = ctx.random_node_id();
    let mut w = worm(ctx, &b, vec![t], 0);
    w.originator = Some(origin);
    let same = past_short_limits(&b, &worm_request_frame(&w)).await;
    let t = ctx.random_node_id();
    let other = worm(ctx, &b, vec![t], 0);
    let other = read_worm_response(&past_short_limits(&b, &worm_request_frame(&other)).await);
    let o = match (expect_error(&same, &["rateLimited"]), other) {
        (Ok(e), Ok(_)) if e.retry_after_ms >= 1 => Outcome::pass(
            expected,
            format!(
                "O on B: {e}, retryAfterMs {}; another originator on B: answered",
                e.retry_after_ms
            ),
        ),
        (same, other) => Outcome::fail(
            expected,
            format!(
                "O on B: {}; another originator on B: {}",
                same.map_or_else(|g| g, |e| format!("{e}, retryAfterMs {}", e.retry_after_ms)),
                other.map_or_else(|g| g, |w| w.to_string())
            ),
        ),
    };
    Ok(o.and_usable(ctx.still_usable(&b.s).await))
}

/// MESH-13.5-047.
pub(super) async fn address_rate(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[]).await?;
    let per_s = f64::from(a.s.hello.limits.rate_limit_per_second).clamp(1.0, 1000.0) * 0.8;
    let gap = Duration::from_secs_f64(1.0 / per_s.min(40.0));
    let expected = "AddressRequests (depth 0, one unknown target) on one connection: 120 are answered, the 121st (or one more per 0.5 s of the run) gets Error(rateLimited) with retryAfterMs ≥ 1, within 12 s (refusals before 120 were served are taken for a per-second limit and waited out)";
    let started = Instant::now();
    let mut n = 0;
    let mut ended = None;
    while started.elapsed() < Duration::from_secs(12) {
        let t = ctx.random_node_id();
        let reply = a.exchange(&address_request_frame(&[t], 0)).await;
        if served(&reply, code::ADDRESS_RESPONSE) {
            n += 1;
        } else {
            match rate_limited(&reply) {
                Some(ms) if n < 120 => {
                    tokio::time::sleep(Duration::from_millis(u64::from(ms.min(1000)) + 5)).await;
                    continue;
                }
                _ => {
                    ended = Some(reply);
                    break;
                }
            }
        }
        tokio::time::sleep(gap).await;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(rate_verdict(expected, ended, n, 120, 2.0, secs))
}

/// MESH-13.5-048.
pub(super) async fn closest_not_originator(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[doc_addr(5020)]).await?;
    // A target one bit away from A: A is the XOR-closest node with an
    // address the relay knows, but it is the worm's originator.
    let mut t = a.id;
    t[31] ^= 1;
    let w = worm(ctx, &a, vec![t], 0);
    let expected = "a WormRequest (ttl 0) from peer A (advertised 192.0.2.7:5020, originator A) for A's id with its last bit flipped: no hits, and `closest` is not A (never the worm's originator)";
    let ans = tri!(
        read_worm_response(&a.exchange(&worm_request_frame(&w)).await),
        expected
    );
    Ok(Outcome::check(
        ans.hits.is_empty() && ans.closest.as_deref() != Some(&a.id[..]),
        expected,
        format!("{ans} (A = {})", hex8(&a.id)),
    ))
}

/// MESH-13.5-046.
pub(super) async fn query_rate(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[]).await?;
    // Stay under the target's announced per-second request limit.
    let per_s = f64::from(a.s.hello.limits.rate_limit_per_second).clamp(1.0, 1000.0) * 0.8;
    let gap = Duration::from_secs_f64(1.0 / per_s.min(40.0));
    let expected = "WormQueries on one connection: 120 are answered, the 121st (or one more per 0.5 s of the run) gets Error(rateLimited) with retryAfterMs ≥ 1, within 12 s (refusals before 120 were served are taken for a per-second limit and waited out)";
    let started = Instant::now();
    let mut n = 0;
    let mut ended = None;
    while started.elapsed() < Duration::from_secs(12) {
        let t = ctx.random_node_id();
        let reply = a.exchange(&worm_query_frame(&worm_id(ctx), &[t])).await;
        if served(&reply, code::WORM_RESPONSE) {
            n += 1;
        } else {
            match rate_limited(&reply) {
                Some(ms) if n < 120 => {
                    tokio::time::sleep(Duration::from_millis(u64::from(ms.min(1000)) + 5)).await;
                    continue;
                }
                _ => {
                    ended = Some(reply);
                    break;
                }
            }
        }
        tokio::time::sleep(gap).await;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(rate_verdict(expected, ended, n, 120, 2.0, secs))
}
