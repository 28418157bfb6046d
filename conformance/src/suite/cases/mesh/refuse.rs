//! The refusals of §13.9 for map pushes on a bidirectional stream:
//! `InitialMapSync` chunk rules and bounds, `RoutingDiff` kinds and bounds,
//! each with the connection still usable afterwards.

use distsoc_schema::discovery_capnp::ChangeKind;

use super::harness::{diff_frame, doc_addr, map_frame, Id, Tester, H1};
use super::map::{added, mapped, removed};
use super::{acked, refused};
use crate::suite::ctx::{CaseError, Ctx, Outcome};

/// An InitialMapSync or RoutingDiff on a bidirectional stream of a fresh
/// mesh tester must be refused with one of `allowed`.
async fn refuse(
    ctx: &mut Ctx,
    frame: &[u8],
    allowed: &[&str],
    what: &str,
) -> Result<Outcome, CaseError> {
    let a = Tester::connect(ctx, &[]).await?;
    let reply = a.exchange(frame).await;
    Ok(refused(ctx, &a, &reply, allowed, what).await)
}

/// MESH-13.4-012.
pub(super) async fn count_zero(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    refuse(
        ctx,
        &map_frame(0, 0, 0, &[], &[], 0),
        &["malformed"],
        "InitialMapSync with chunkCount 0",
    )
    .await
}

/// MESH-13.4-013.
pub(super) async fn index_past(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    refuse(
        ctx,
        &map_frame(0, 1, 1, &[], &[], 0),
        &["malformed"],
        "InitialMapSync with chunkIndex 1 of chunkCount 1",
    )
    .await
}

/// MESH-13.4-014.
pub(super) async fn hop1_later(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let x = ctx.random_node_id();
    refuse(
        ctx,
        &map_frame(0, 1, 2, &[(x, vec![doc_addr(4600)])], &[], 0),
        &["malformed"],
        "InitialMapSync chunk 1 of 2 with a hop1 entry",
    )
    .await
}

/// MESH-13.4-015.
pub(super) async fn count_17(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    refuse(
        ctx,
        &map_frame(0, 0, 17, &[], &[], 0),
        &["tooLarge"],
        "InitialMapSync with chunkCount 17",
    )
    .await
}

/// MESH-13.4-016.
pub(super) async fn count_differs(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::connect(ctx, &[]).await?;
    let first = a.exchange(&map_frame(0, 0, 2, &[], &[], 0)).await;
    if let Err(e) = super::expect_ack(&first) {
        return Ok(Outcome::fail(
            "chunk 0 of 2 (seq 0): Ack; then chunk 1 of 3 (seq 0): Error(malformed)",
            format!("chunk 0 of 2 got {e}"),
        ));
    }
    let reply = a.exchange(&map_frame(0, 1, 3, &[], &[], 0)).await;
    Ok(refused(
        ctx,
        &a,
        &reply,
        &["malformed"],
        "after chunk 0 of 2 (seq 0, acknowledged), chunk 1 of 3 with the same seq",
    )
    .await)
}

/// MESH-13.4-017.
pub(super) async fn hop1_over(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let hop1: Vec<(Id, Vec<std::net::SocketAddr>)> =
        (0..1025).map(|_| (ctx.random32(), Vec::new())).collect();
    refuse(
        ctx,
        &map_frame(0, 0, 1, &hop1, &[], 0),
        &["tooLarge"],
        "InitialMapSync with 1,025 hop-1 entries",
    )
    .await
}

/// MESH-13.4-018.
pub(super) async fn hop2_total_over(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::connect(ctx, &[]).await?;
    let big: Vec<Id> = (0..65_536u32)
        .map(|i| {
            let mut id = [0x33; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id
        })
        .collect();
    let expected = "chunk 0 of 2 with 65,536 hop-2 entries: Ack; chunk 1 of 2 (same seq) with 1 more: Error(tooLarge)";
    let first = a.exchange(&map_frame(0, 0, 2, &[], &big, 0)).await;
    if let Err(e) = super::expect_ack(&first) {
        return Ok(Outcome::fail(
            expected,
            format!("chunk 0 with 65,536 hop-2 entries got {e}"),
        ));
    }
    let one = [ctx.random32()];
    let reply = a.exchange(&map_frame(0, 1, 2, &[], &one, 0)).await;
    Ok(refused(
        ctx,
        &a,
        &reply,
        &["tooLarge"],
        "after a chunk 0 of 2 holding 65,536 hop-2 entries, chunk 1 with one more",
    )
    .await)
}

/// MESH-13.4-019.
pub(super) async fn hop3_ignored(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = Tester::connect(ctx, &[]).await?;
    let reply = a.exchange(&map_frame(0, 0, 1, &[], &[], 3)).await;
    Ok(acked(
        ctx,
        &a,
        &reply,
        "InitialMapSync with 3 hop-3 ids (ignored, not refused)",
    )
    .await)
}

/// MESH-13.2-020.
pub(super) async fn hop2_address_changed(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let id = ctx.random_node_id();
    refuse(
        ctx,
        &diff_frame(1, &[], &[(id, ChangeKind::AddressChanged)]),
        &["malformed"],
        "RoutingDiff with an addressChanged hop-2 change",
    )
    .await
}

/// MESH-13.2-021.
pub(super) async fn diff_hop1_over(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let changes: Vec<H1> = (0..1025).map(|_| removed(ctx.random32())).collect();
    refuse(
        ctx,
        &diff_frame(1, &changes, &[]),
        &["tooLarge"],
        "RoutingDiff with 1,025 hop-1 changes",
    )
    .await
}

/// MESH-13.2-022.
pub(super) async fn diff_hop2_over(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let changes: Vec<(Id, ChangeKind)> = (0..16_385u32)
        .map(|i| {
            let mut id = [0x44; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            (id, ChangeKind::Removed)
        })
        .collect();
    refuse(
        ctx,
        &diff_frame(1, &[], &changes),
        &["tooLarge"],
        "RoutingDiff with 16,385 hop-2 changes",
    )
    .await
}

/// MESH-13.2-023.
pub(super) async fn report_over(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let hop1: Vec<(Id, Vec<std::net::SocketAddr>)> =
        (0..1024).map(|_| (ctx.random32(), Vec::new())).collect();
    let a = Tester::connect(ctx, &[]).await?;
    let expected = "a map (seq 0) with 1,024 hop-1 entries: Ack; a RoutingDiff seq 1 adding a 1,025th: Error(tooLarge)";
    let first = a.exchange(&map_frame(0, 0, 1, &hop1, &[], 0)).await;
    if let Err(e) = super::expect_ack(&first) {
        return Ok(Outcome::fail(
            expected,
            format!("the map with 1,024 hop-1 entries got {e}"),
        ));
    }
    let more = ctx.random32();
    let reply = a.exchange(&diff_frame(1, &[added(more, 4700)], &[])).await;
    Ok(refused(
        ctx,
        &a,
        &reply,
        &["tooLarge"],
        "after a report of 1,024 hop-1 entries, a RoutingDiff adding one more",
    )
    .await)
}

/// MESH-13.2-024.
pub(super) async fn diff_hop1_at_cap(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = mapped(ctx, &[], &[]).await?;
    let changes: Vec<H1> = (0..1024).map(|_| removed(ctx.random32())).collect();
    let reply = a.exchange(&diff_frame(1, &changes, &[])).await;
    Ok(acked(
        ctx,
        &a,
        &reply,
        "RoutingDiff seq 1 with 1,024 hop-1 changes (the limit)",
    )
    .await)
}
