//! The map: the target's `InitialMapSync` (§13.4), a tester's map and diffs
//! applied and reflected in `AddressRequest` answers (§13.2, §13.7), `seq`
//! duplicates, held diffs and gaps (§13.3), `MapSyncRequest` (§13.3),
//! staging (§13.4) and changes that name the receiver or the sender
//! (§13.2). The refusals of §13.9 are in `refuse.rs`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use distsoc_schema::discovery_capnp::ChangeKind;

use super::harness::{
    address_request_frame, diff_frame, doc_addr, hex8, map_frame, map_sync_request_frame,
    read_entries, read_last_seq, show, Entry, Got, Id, Tester, H1,
};
use super::tri;
use crate::suite::ctx::{expect_error, CaseError, Ctx, Outcome};
use crate::suite::model::Role;
use crate::suite::wire::code;

/// How long a pushed change may take to show in answers.
const SETTLE: Duration = Duration::from_secs(2);

/// Asks `t` for `target` (depth 0) until `pred` holds or [`SETTLE`] has
/// passed; the last entry read.
pub(super) async fn entry_until(
    t: &Tester,
    target: Id,
    pred: impl Fn(&Entry) -> bool,
) -> Result<Entry, String> {
    let started = Instant::now();
    loop {
        let reply = t.s.request(&address_request_frame(&[target], 0)).await;
        let mut e = read_entries(&reply)?;
        if e.len() != 1 {
            return Err(format!("{} entries for 1 target", e.len()));
        }
        let e = e.remove(0);
        if pred(&e) || started.elapsed() > SETTLE {
            return Ok(e);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn referral_to(e: &Entry, t: &Tester) -> bool {
    !e.found && e.referral == t.id
}

/// The entry shows the tester's report: referred to the tester, or found
/// at exactly the address the tester reported (how the target answers for
/// a hop-2 node is MESH-13.7-004's business, not the diff cases').
fn reflected(e: &Entry, t: &Tester, port: u16) -> bool {
    referral_to(e, t) || (e.found && e.addrs == [doc_addr(port)])
}

fn unknown(e: &Entry) -> bool {
    !e.found && e.referral.is_empty()
}

pub(super) fn added(id: Id, port: u16) -> H1 {
    H1 {
        id,
        kind: ChangeKind::Added,
        addrs: vec![doc_addr(port)],
    }
}

pub(super) fn removed(id: Id) -> H1 {
    H1 {
        id,
        kind: ChangeKind::Removed,
        addrs: Vec::new(),
    }
}

/// A tester whose empty map (seq 0) the target acknowledged.
pub(super) async fn mapped(
    ctx: &mut Ctx,
    hop1: &[(Id, Vec<std::net::SocketAddr>)],
    hop2: &[Id],
) -> Result<Tester, CaseError> {
    let t = Tester::connect(ctx, &[]).await?;
    let reply = t.exchange(&map_frame(0, 0, 1, hop1, hop2, 0)).await;
    if let Err(e) = super::expect_ack(&reply) {
        return Err(CaseError::Setup(format!(
            "the tester's InitialMapSync (seq 0) was not acknowledged: {e}"
        )));
    }
    Ok(t)
}

// ---- the target's map -------------------------------------------------------------

/// MESH-13.4-001.
pub(super) async fn pushed(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let mut t = Tester::connect(ctx, &[]).await?;
    let expected = "after a Hello declaring mesh/1: an InitialMapSync on unidirectional streams, seq 0, chunkCount 1..=16, every chunk with an index below chunkCount and the same seq and chunkCount, hop1 only in chunk 0, at most 4,096 hop-2 entries per chunk, hop3 empty, all chunks within 5 s";
    let chunks = tri!(t.map_chunks(ctx.timeouts.reply).await, expected);
    let uni = t
        .received()
        .iter()
        .filter(|g| g.code == code::INITIAL_MAP_SYNC)
        .all(|g| g.uni);
    let first = &chunks[0];
    let mut bad = Vec::new();
    if !uni {
        bad.push("a chunk on a bidirectional stream".to_string());
    }
    if first.seq != 0 {
        bad.push(format!("seq {}", first.seq));
    }
    if !(1..=16).contains(&first.chunk_count) {
        bad.push(format!("chunkCount {}", first.chunk_count));
    }
    let mut indices = HashSet::new();
    for c in &chunks {
        if c.chunk_count != first.chunk_count {
            bad.push(format!(
                "chunkCount {} and {}",
                first.chunk_count, c.chunk_count
            ));
        }
        if c.chunk_index >= c.chunk_count || !indices.insert(c.chunk_index) {
            bad.push(format!(
                "chunkIndex {} (of {})",
                c.chunk_index, c.chunk_count
            ));
        }
        if c.chunk_index != 0 && !c.hop1.is_empty() {
            bad.push(format!("hop1 in chunk {}", c.chunk_index));
        }
        if c.hop2 > 4096 {
            bad.push(format!(
                "{} hop-2 entries in chunk {}",
                c.hop2, c.chunk_index
            ));
        }
        if c.hop3 != 0 {
            bad.push(format!(
                "{} hop-3 entries in chunk {}",
                c.hop3, c.chunk_index
            ));
        }
    }
    if chunks.len() < first.chunk_count as usize {
        bad.push(format!(
            "{} of {} chunks arrived",
            chunks.len(),
            first.chunk_count
        ));
    }
    Ok(Outcome::check(
        bad.is_empty(),
        expected,
        if bad.is_empty() {
            format!(
                "{} chunk(s), seq 0, {} hop-1 entries",
                chunks.len(),
                first.hop1.len()
            )
        } else {
            bad.join("; ")
        },
    ))
}

/// The hop-1 entries of the map the target pushes to a new tester.
pub(super) async fn hop1_seen_by_new_peer(
    ctx: &mut Ctx,
) -> Result<(Vec<(Vec<u8>, Vec<std::net::SocketAddr>)>, Tester), String> {
    let mut b = Tester::connect(ctx, &[]).await.map_err(|e| e.to_string())?;
    let chunks = b.map_chunks(ctx.timeouts.reply).await?;
    let hop1 = chunks
        .into_iter()
        .filter(|c| c.chunk_index == 0)
        .flat_map(|c| c.hop1)
        .collect();
    Ok((hop1, b))
}

/// MESH-13.1-002.
pub(super) async fn hop1_addresses(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[doc_addr(4001), doc_addr(4002)]).await?;
    let p = Tester::peer(ctx, &[]).await?;
    let anchor = ctx.role == Role::Anchor;
    let expected = if anchor {
        "a later peer's InitialMapSync lists each peer at hop 1; an anchor reports only addresses it verified by dialling back (§12, §13.1): none for one that advertised unreachable documentation addresses [192.0.2.7:4001, 192.0.2.7:4002], none for one that advertised none (never the address its packets come from)"
    } else {
        "a later peer's InitialMapSync lists each peer at hop 1 with exactly the addresses it advertised: [192.0.2.7:4001, 192.0.2.7:4002] for one, none for one that advertised none (never the address its packets come from)"
    };
    let (hop1, _b) = tri!(hop1_seen_by_new_peer(ctx).await, expected);
    let find = |id: &Id| hop1.iter().find(|(n, _)| n == id).map(|(_, a)| a.clone());
    let got_a = find(&a.id);
    let got_p = find(&p.id);
    let want_a: &[std::net::SocketAddr] = if anchor {
        &[]
    } else {
        &[doc_addr(4001), doc_addr(4002)]
    };
    let ok = got_a.as_deref() == Some(want_a) && got_p.as_ref().is_some_and(Vec::is_empty);
    let say = |g: &Option<Vec<std::net::SocketAddr>>| {
        g.as_ref()
            .map_or_else(|| "absent".to_string(), |a| format!("[{}]", show(a)))
    };
    Ok(Outcome::check(
        ok,
        expected,
        format!(
            "{} hop-1 entries; advertising peer {}; silent peer {}",
            hop1.len(),
            say(&got_a),
            say(&got_p)
        ),
    ))
}

/// MESH-13-003.
pub(super) async fn not_mesh(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let n = ctx.connect().await?;
    let a = Tester::peer(ctx, &[]).await?;
    let expected = "a connection whose Hello did not declare mesh/1 is not in the map: absent from a later peer's InitialMapSync (while a mesh/1 peer connected after it is present)";
    let (hop1, _b) = tri!(hop1_seen_by_new_peer(ctx).await, expected);
    let has = |id: &Id| hop1.iter().any(|(x, _)| x == id);
    Ok(Outcome::check(
        !has(&n.client_id) && has(&a.id),
        expected,
        format!(
            "non-mesh connection listed: {}; mesh peer listed: {}",
            has(&n.client_id),
            has(&a.id)
        ),
    ))
}

// ---- a tester's map and diffs -----------------------------------------------------

/// MESH-13.7-004.
pub(super) async fn map_applied(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let x = ctx.random_node_id();
    let z = ctx.random_node_id();
    let a = mapped(ctx, &[(x, vec![doc_addr(4100)])], &[z]).await?;
    let anchor = ctx.role == Role::Anchor;
    let expected = if anchor {
        "after the tester's map (hop1 [X at 192.0.2.7:4100], hop2 [Z]) is acknowledged, AddressRequest depth 0 to an anchor: X (hop 2) not found with referral = the tester (an anchor does not repeat a second-hand address); Z (hop 3) not found with referral = the tester"
    } else {
        "after the tester's map (hop1 [X at 192.0.2.7:4100], hop2 [Z]) is acknowledged, AddressRequest depth 0: X (hop 2) found at the reported [192.0.2.7:4100]; Z (hop 3) not found with referral = the tester"
    };
    let x_ok = |e: &Entry| {
        if anchor {
            referral_to(e, &a)
        } else {
            e.found && e.addrs == [doc_addr(4100)]
        }
    };
    let ex = tri!(entry_until(&a, x, x_ok).await, expected);
    let ez = tri!(entry_until(&a, z, |e| referral_to(e, &a)).await, expected);
    Ok(Outcome::check(
        x_ok(&ex) && referral_to(&ez, &a),
        expected,
        format!("X: {ex}; Z: {ez} (tester {})", hex8(&a.id)),
    ))
}

/// MESH-13.2-005.
pub(super) async fn diff_applied(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = mapped(ctx, &[], &[]).await?;
    let y = ctx.random_node_id();
    let w = ctx.random_node_id();
    let expected = "RoutingDiff seq 1 (hop1 added Y at 192.0.2.7:4200, hop2 added W) → Ack, then Y is known through the tester (referred to it, or found at the reported address) and W is referred to it; RoutingDiff seq 2 (removed Y, removed W) → Ack, then both are unknown (no referral)";
    let r1 = a
        .exchange(&diff_frame(1, &[added(y, 4200)], &[(w, ChangeKind::Added)]))
        .await;
    tri!(super::expect_ack(&r1), expected);
    let ey = tri!(
        entry_until(&a, y, |e| reflected(e, &a, 4200)).await,
        expected
    );
    let ew = tri!(entry_until(&a, w, |e| referral_to(e, &a)).await, expected);
    let r2 = a
        .exchange(&diff_frame(2, &[removed(y)], &[(w, ChangeKind::Removed)]))
        .await;
    tri!(super::expect_ack(&r2), expected);
    let gy = tri!(entry_until(&a, y, unknown).await, expected);
    let gw = tri!(entry_until(&a, w, unknown).await, expected);
    Ok(Outcome::check(
        reflected(&ey, &a, 4200) && referral_to(&ew, &a) && unknown(&gy) && unknown(&gw),
        expected,
        format!("after seq 1: Y {ey}, W {ew}; after seq 2: Y {gy}, W {gw}"),
    ))
}

/// MESH-13.3-006.
pub(super) async fn duplicate(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = mapped(ctx, &[], &[]).await?;
    let y = ctx.random_node_id();
    let expected = "RoutingDiff seq 1 adds Y (Ack; Y known through the tester: referred to it, or found at the reported address); a second RoutingDiff with seq 1 removing Y is acknowledged and ignored: Y is still known through the tester";
    tri!(
        super::expect_ack(&a.exchange(&diff_frame(1, &[added(y, 4300)], &[])).await),
        expected
    );
    let before = tri!(
        entry_until(&a, y, |e| reflected(e, &a, 4300)).await,
        expected
    );
    let dup = a.exchange(&diff_frame(1, &[removed(y)], &[])).await;
    tri!(
        super::expect_ack(&dup).map_err(|e| format!("the duplicate got {e}")),
        expected
    );
    tokio::time::sleep(ctx.timeouts.silence).await;
    let after = tri!(
        entry_until(&a, y, |e| reflected(e, &a, 4300)).await,
        expected
    );
    Ok(Outcome::check(
        reflected(&before, &a, 4300) && reflected(&after, &a, 4300),
        expected,
        format!("before the duplicate: {before}; after it: {after}"),
    ))
}

/// MESH-13.3-007.
pub(super) async fn held(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = mapped(ctx, &[], &[]).await?;
    let y1 = ctx.random_node_id();
    let y2 = ctx.random_node_id();
    let expected = "RoutingDiff seq 2 (adds Y2) before seq 1 (adds Y1): both acknowledged; once seq 1 arrives both are applied (Y1 and Y2 known through the tester: referred to it, or found at the reported addresses)";
    tri!(
        super::expect_ack(&a.exchange(&diff_frame(2, &[added(y2, 4402)], &[])).await),
        expected
    );
    tri!(
        super::expect_ack(&a.exchange(&diff_frame(1, &[added(y1, 4401)], &[])).await),
        expected
    );
    let e1 = tri!(
        entry_until(&a, y1, |e| reflected(e, &a, 4401)).await,
        expected
    );
    let e2 = tri!(
        entry_until(&a, y2, |e| reflected(e, &a, 4402)).await,
        expected
    );
    Ok(Outcome::check(
        reflected(&e1, &a, 4401) && reflected(&e2, &a, 4402),
        expected,
        format!("Y1: {e1}; Y2: {e2}"),
    ))
}

fn is_map_sync_request(g: &Got) -> bool {
    g.code == code::MAP_SYNC_REQUEST
}

/// MESH-13.3-008.
pub(super) async fn gap_timer(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let x = ctx.random_node_id();
    let mut a = mapped(ctx, &[(x, vec![doc_addr(4500)])], &[]).await?;
    let expected = "after the map (seq 0, hop1 [X]) a RoutingDiff with seq 2 is acknowledged; seq 1 never comes: within 10 s (+ 3 s transit) the target sends MapSyncRequest with lastSeq 0 and drops the tester's report (X unknown)";
    tri!(
        super::expect_ack(
            &a.exchange(&diff_frame(
                2,
                &[],
                &[(ctx.random_node_id(), ChangeKind::Added)]
            ))
            .await
        ),
        expected
    );
    let sent = Instant::now();
    let Some(g) = a
        .wait_for(Duration::from_secs(13), is_map_sync_request)
        .await
    else {
        return Ok(Outcome::fail(expected, "no MapSyncRequest within 13 s"));
    };
    let waited = sent.elapsed();
    let last = tri!(read_last_seq(&g), expected);
    let ex = tri!(entry_until(&a, x, unknown).await, expected);
    Ok(Outcome::check(
        last == 0 && unknown(&ex),
        expected,
        format!(
            "MapSyncRequest after {:.1} s on a {} stream, lastSeq {last}; X then: {ex}",
            waited.as_secs_f64(),
            if g.uni {
                "unidirectional"
            } else {
                "bidirectional"
            }
        ),
    ))
}

/// MESH-13.3-009.
pub(super) async fn gap_count(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let mut a = mapped(ctx, &[], &[]).await?;
    let expected = "after the map (seq 0), 17 RoutingDiffs with seq 3..=19 (seq 1 and 2 missing) are each acknowledged; more than 16 held diffs is a gap at once: MapSyncRequest with lastSeq 0 within 5 s, well before the 10 s timer";
    for seq in 3..=19 {
        let id = ctx.random_node_id();
        let r = a
            .exchange(&diff_frame(seq, &[], &[(id, ChangeKind::Added)]))
            .await;
        tri!(
            super::expect_ack(&r).map_err(|e| format!("seq {seq} got {e}")),
            expected
        );
    }
    let sent = Instant::now();
    let Some(g) = a
        .wait_for(Duration::from_secs(5), is_map_sync_request)
        .await
    else {
        return Ok(Outcome::fail(
            expected,
            "no MapSyncRequest within 5 s of the 17th held diff",
        ));
    };
    let last = tri!(read_last_seq(&g), expected);
    Ok(Outcome::check(
        last == 0,
        expected,
        format!(
            "MapSyncRequest after {:.1} s, lastSeq {last}",
            sent.elapsed().as_secs_f64()
        ),
    ))
}

/// The highest `seq` of the RoutingDiffs the target sent `t` so far (0 if
/// none).
fn last_diff_seq(t: &mut Tester) -> u64 {
    t.received()
        .iter()
        .filter(|g| g.code == code::ROUTING_DIFF)
        .filter_map(|g| {
            let f = g.frame().ok()?;
            let reader = f.reader();
            let r: distsoc_schema::discovery_capnp::routing_diff::Reader<'_> =
                reader.get_root().ok()?;
            Some(r.get_seq())
        })
        .max()
        .unwrap_or(0)
}

/// MESH-13.3-010.
pub(super) async fn resync_served(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let mut a = Tester::peer(ctx, &[]).await?;
    let expected = "MapSyncRequest on a bidirectional stream: Ack, then a fresh InitialMapSync (all chunks, seq = the last diff seq sent to this peer, 0 if none, hop3 empty) within 5 s";
    let n_before = a.map_count();
    let reply = a.exchange(&map_sync_request_frame(0)).await;
    tri!(super::expect_ack(&reply), expected);
    let want_seq = last_diff_seq(&mut a);
    let chunks = match a.map_chunks_after(ctx.timeouts.reply, n_before).await {
        Ok(c) => c,
        Err(_) => {
            return Ok(Outcome::fail(
                expected,
                format!("Ack, but no new InitialMapSync within 5 s ({n_before} map chunk(s) before the request)"),
            ))
        }
    };
    let m = &chunks[0];
    let chunks = chunks.len() as u32;
    Ok(Outcome::check(
        m.seq == want_seq && m.hop3 == 0 && chunks >= m.chunk_count,
        expected,
        format!(
            "Ack; InitialMapSync seq {} (diffs sent before: up to seq {want_seq}), {chunks} of {} chunk(s), {} hop-3 entries",
            m.seq, m.chunk_count, m.hop3
        ),
    ))
}

/// MESH-13.3-011.
pub(super) async fn resync_limited(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::peer(ctx, &[]).await?;
    let expected = "a second MapSyncRequest right after one was served: Error(rateLimited) with 1 ≤ retryAfterMs ≤ 60,000";
    let first = a.exchange(&map_sync_request_frame(0)).await;
    tri!(
        super::expect_ack(&first).map_err(|e| format!("the first MapSyncRequest got {e}")),
        expected
    );
    let second = a.exchange(&map_sync_request_frame(0)).await;
    let o = match expect_error(&second, &["rateLimited"]) {
        Ok(e) if (1..=60_000).contains(&e.retry_after_ms) => {
            Outcome::pass(expected, format!("{e}, retryAfterMs {}", e.retry_after_ms))
        }
        Ok(e) => Outcome::fail(expected, format!("{e}, retryAfterMs {}", e.retry_after_ms)),
        Err(got) => Outcome::fail(expected, got),
    };
    Ok(o.and_usable(ctx.still_usable(&a.s).await))
}

/// One AddressRequest (depth 0) for `id`, after the run's silence.
async fn entry_now(ctx: &Ctx, t: &Tester, id: Id) -> Result<Entry, String> {
    tokio::time::sleep(ctx.timeouts.silence).await;
    let mut e = read_entries(&t.s.request(&address_request_frame(&[id], 0)).await)?;
    if e.len() != 1 {
        return Err(format!("{} entries for 1 target", e.len()));
    }
    Ok(e.remove(0))
}

/// MESH-13.4-025.
pub(super) async fn staging(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let x1 = ctx.random_node_id();
    let x2 = ctx.random_node_id();
    let w = ctx.random_node_id();
    let a = mapped(ctx, &[(x1, vec![doc_addr(4801)])], &[]).await?;
    let expected = "map seq 0 {hop1 X1}, diff seq 1 {hop2 added W}, then a fresh map seq 1 in 2 chunks {hop1 X2}: after chunk 0 only, the old report is still in use (X1 known through the tester, X2 unknown); after chunk 1, the new one replaces it (X2 known, X1 and W unknown)";
    tri!(
        super::expect_ack(
            &a.exchange(&diff_frame(1, &[], &[(w, ChangeKind::Added)]))
                .await
        ),
        expected
    );
    tri!(entry_until(&a, w, |e| referral_to(e, &a)).await, expected);
    tri!(
        super::expect_ack(
            &a.exchange(&map_frame(1, 0, 2, &[(x2, vec![doc_addr(4802)])], &[], 0))
                .await
        )
        .map_err(|e| format!("chunk 0 of the fresh map got {e}")),
        expected
    );
    let mid1 = tri!(entry_now(ctx, &a, x1).await, expected);
    let mid2 = tri!(entry_now(ctx, &a, x2).await, expected);
    tri!(
        super::expect_ack(&a.exchange(&map_frame(1, 1, 2, &[], &[], 0)).await)
            .map_err(|e| format!("chunk 1 of the fresh map got {e}")),
        expected
    );
    let end2 = tri!(
        entry_until(&a, x2, |e| reflected(e, &a, 4802)).await,
        expected
    );
    let end1 = tri!(entry_until(&a, x1, unknown).await, expected);
    let endw = tri!(entry_until(&a, w, unknown).await, expected);
    Ok(Outcome::check(
        reflected(&mid1, &a, 4801)
            && unknown(&mid2)
            && reflected(&end2, &a, 4802)
            && unknown(&end1)
            && unknown(&endw),
        expected,
        format!(
            "after chunk 0: X1 {mid1}, X2 {mid2}; after chunk 1: X2 {end2}, X1 {end1}, W {endw}"
        ),
    ))
}

/// MESH-13.3-026.
pub(super) async fn map_drops_held(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = mapped(ctx, &[], &[]).await?;
    let (y2, y3, x) = (
        ctx.random_node_id(),
        ctx.random_node_id(),
        ctx.random_node_id(),
    );
    let expected = "after map seq 0: diffs seq 3 {added Y3} and seq 2 {added Y2} are held (seq 1 missing); a fresh map seq 2 {hop1 X} is applied, the held seq 2 dropped and seq 3 applied: X and Y3 known through the tester, Y2 unknown; no MapSyncRequest";
    for (seq, id, port) in [(3, y3, 4903), (2, y2, 4902)] {
        tri!(
            super::expect_ack(&a.exchange(&diff_frame(seq, &[added(id, port)], &[])).await)
                .map_err(|e| format!("diff seq {seq} got {e}")),
            expected
        );
    }
    tri!(
        super::expect_ack(
            &a.exchange(&map_frame(2, 0, 1, &[(x, vec![doc_addr(4900)])], &[], 0))
                .await
        )
        .map_err(|e| format!("the map seq 2 got {e}")),
        expected
    );
    let ex = tri!(
        entry_until(&a, x, |e| reflected(e, &a, 4900)).await,
        expected
    );
    let e3 = tri!(
        entry_until(&a, y3, |e| reflected(e, &a, 4903)).await,
        expected
    );
    let e2 = tri!(entry_now(ctx, &a, y2).await, expected);
    let mut a = a;
    let msr = a.received().iter().any(is_map_sync_request);
    Ok(Outcome::check(
        reflected(&ex, &a, 4900) && reflected(&e3, &a, 4903) && unknown(&e2) && !msr,
        expected,
        format!("X {ex}; Y3 {e3}; Y2 {e2}; MapSyncRequest sent: {msr}"),
    ))
}

/// MESH-13.2-027.
pub(super) async fn names_receiver(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = mapped(ctx, &[], &[]).await?;
    let me: Id = ctx.target.node_id;
    let expected = "a RoutingDiff whose hop-1 change names the target itself (added at 192.0.2.7:4990) is acknowledged and ignored: AddressRequest for the target never returns 192.0.2.7:4990 or a referral";
    let before = tri!(entry_now(ctx, &a, me).await, expected);
    tri!(
        super::expect_ack(&a.exchange(&diff_frame(1, &[added(me, 4990)], &[])).await),
        expected
    );
    let after = tri!(entry_now(ctx, &a, me).await, expected);
    Ok(Outcome::check(
        !after.addrs.contains(&doc_addr(4990))
            && after.referral.is_empty()
            && after.found == before.found,
        expected,
        format!("before: {before}; after: {after}"),
    ))
}

/// MESH-13.2-028.
pub(super) async fn names_sender(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = mapped(ctx, &[], &[]).await?;
    let q = Tester::peer(ctx, &[]).await?;
    let expected = "a peer that advertised no address sends a RoutingDiff whose hop-1 change names itself (added at 192.0.2.7:4991): acknowledged and ignored; AddressRequest for it from another peer: not found, never 192.0.2.7:4991";
    tri!(
        super::expect_ack(&a.exchange(&diff_frame(1, &[added(a.id, 4991)], &[])).await),
        expected
    );
    let e = tri!(entry_now(ctx, &q, a.id).await, expected);
    Ok(Outcome::check(
        !e.found && !e.addrs.contains(&doc_addr(4991)),
        expected,
        e.to_string(),
    ))
}
