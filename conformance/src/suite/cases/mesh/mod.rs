//! MESH: the mesh of schema/README.md §13, as a peer sees it — the
//! target's map push, a peer's map and diffs applied and reflected in
//! answers, `seq` duplicates, held diffs and gaps, `MapSyncRequest`, the
//! refusals of §13.9 on a bidirectional stream, the worm's ttl, loop,
//! fan-out, forward and rate-limit rules, `AddressRequest` from the map,
//! and the address privacy rules of §13.1.
//!
//! Every tester here declares `mesh/1` and `worm/1` in its Hello, so the
//! target counts it as a peer (§13: "a node with an established connection
//! ... that declared the capability `mesh/1`"); `harness::Tester`
//! answers what the target sends it (map pushes, `WormQuery`, forwarded
//! `WormRequest`, `AddressRequest`). Waits are bounded by the spec's own
//! timers (10 s for a `seq` gap) or by the run's reply timeout.

use std::time::Duration;

use super::def;
use crate::suite::client::Reply;
use crate::suite::ctx::{error_words, expect_code, expect_error, Ctx, Outcome};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::code;

mod addr;
pub(crate) mod harness;
mod map;
mod refuse;
mod worm;

use harness::Tester;

/// Returns `Ok(Outcome::fail(expected, why))` from the case on `Err(why)`.
macro_rules! tri {
    ($e:expr, $expected:expr) => {
        match $e {
            Ok(v) => v,
            Err(why) => return Ok(Outcome::fail($expected, why)),
        }
    };
}
pub(crate) use tri;

/// The reply is an `Ack`.
fn expect_ack(reply: &Reply) -> Result<(), String> {
    expect_code(reply, code::ACK).map(|_| ())
}

/// The reply is an `Error` with one of `allowed`, and the tester's
/// connection still serves.
async fn refused(
    ctx: &mut Ctx,
    t: &Tester,
    reply: &Reply,
    allowed: &[&str],
    what: &str,
) -> Outcome {
    let expected = format!("{what}: {}", error_words(allowed));
    let o = match expect_error(reply, allowed) {
        Ok(e) => Outcome::pass(&expected, e.to_string()),
        Err(got) => Outcome::fail(&expected, got),
    };
    o.and_usable(ctx.still_usable(&t.s).await)
}

/// The reply is an `Ack`, and the tester's connection still serves.
async fn acked(ctx: &mut Ctx, t: &Tester, reply: &Reply, what: &str) -> Outcome {
    let expected = format!("{what}: Ack");
    let o = match expect_ack(reply) {
        Ok(()) => Outcome::pass(&expected, "Ack"),
        Err(got) => Outcome::fail(&expected, got),
    };
    o.and_usable(ctx.still_usable(&t.s).await)
}

const MESH: Option<&str> = Some("mesh/1");
const WORM: Option<&str> = Some("worm/1");

const INITIAL: &str = "On every new connection between two peers, each side sends the other its view right after the Hello exchange, with `seq` 0 [...] `hop3` is always empty: a sender MUST send it empty [...] A map is sent as `chunkCount` chunks, `chunkIndex` 0 to `chunkCount − 1`, each on its own unidirectional stream, in index order. Chunk 0 carries all of hop 1 (at most 1,024 entries); every other chunk has an empty `hop1`. Each chunk carries at most 4,096 hop-2 entries; `chunkCount` is the smallest that fits, at least 1 and at most 16 [...] All chunks of one map carry the same `seq` and `chunkCount`. (schema/README.md §13.4)";
const ADVERTISED: &str = "The addresses of a peer in the map are only those it advertised in `Hello.listenAddresses` [...] A node MUST NOT put in its map, report or answer with the address it merely sees a peer's packets come from. [...] A peer that advertised no address is reported with an empty address list (schema/README.md §13.1); What a node reports — its view. Its hop 1 (each peer with its advertised addresses [...]) (§13.1)";
const PEER: &str = "A peer is a node with an established connection (Hello exchange complete, §1.3) that declared the capability `mesh/1` (§3.2). Connections of nodes that did not (a mailbox-only client, a conformance tester) are not part of the mesh: they are never in the map and never reported. (schema/README.md §13)";
const APPLIED: &str = "hop 2 = the union of the reports' hop-1 sets, minus the node itself and its hop 1. hop 3 = the union of the reports' hop-2 sets [...] (§13.1); AddressRequest, T at the responder, depth 0: hop 2 → not found, `referral` = a peer that reports T; hop 3 → not found, `referral` = a peer that reports T at its hop 2; unknown → not found, no referral (schema/README.md §13.7)";
const DIFF: &str = "Applying a diff to P's report, change by change in list order: `added` and `addressChanged` insert or replace the entry (keeping the first 8 addresses), `removed` deletes it (schema/README.md §13.2); RoutingDiff → `Ack` — also when the diff was a duplicate, held, or revealed a gap (§13.9)";
const SEQ: &str = "a RoutingDiff from P with `seq <= applied`: ignores it (a duplicate); `seq == applied + 1`: applies it, then every held diff that now follows, in order; `seq > applied + 1`: holds it; applies it in order when the missing diffs arrive. If they have not arrived 10 s after the first held diff did, or more than 16 diffs from P are held, that is a gap (schema/README.md §13.3)";
const GAP: &str = "On a gap the receiver drops P's report (everything it derived from P is re-derived without it), sends P a `MapSyncRequest` with `lastSeq = applied` [...] If they have not arrived 10 s after the first held diff did, or more than 16 diffs from P are held, that is a gap (schema/README.md §13.3)";
const SERVE: &str = "Serving a MapSyncRequest. The receiver sends P a fresh `InitialMapSync` of its current view (§13.4) whose `seq` is the `seq` of the last diff it sent P (0 if none) [...] MapSyncRequest → `Ack`, then a fresh InitialMapSync on unidirectional streams (schema/README.md §13.3, §13.9)";
const SERVE_ONCE: &str = "It serves at most one `MapSyncRequest` per peer per 60 s; others are ignored (on a bidirectional stream: `rateLimited`, `retryAfterMs` = the time until it would serve one again). (schema/README.md §13.3); a refusal carries `retryAfterMs` = the time until the next token, rounded up, at least 1 (§13)";
const STAGING: &str = "Staging. The receiver collects the chunks of a map (same `seq` and `chunkCount`) and replaces P's report only when all have arrived; until then P's previous report stays in use. (schema/README.md §13.4); The report of a peer P is the hop-1 set and the hop-2 set P last sent this node: its `InitialMapSync` with P's diffs applied in `seq` order (§13.1)";
const HELD_MAP: &str = "Until P's first map has been applied (a new connection) and after a gap, diffs from P are held by the same rule; when the next map is applied, held diffs with `seq` at or below the map's `seq` are dropped and the rest applied in order. (schema/README.md §13.3)";
const SELF_CHANGE: &str = "Applying a diff to P's report [...] A change that names the receiver itself, and a hop-1 change that names the sender itself, are ignored. (schema/README.md §13.2); The addresses of a peer in the map are only those it advertised in `Hello.listenAddresses` (§13.1)";
const ADDR_RATE: &str = "Rate limits: `AddressRequest` 120 per minute per connection (schema/README.md §13.5); a limit of \"N per minute\" is a token bucket of capacity N refilled continuously at N per 60 s; a refusal carries `retryAfterMs` [...] at least 1 (§13)";
const CLOSEST: &str = "When an answer has no hits it carries, if the responder knows one, the node XOR-closest to the first target among the nodes with at least one address it knows: itself, its hop-1 peers with advertised addresses, its hop-2 entries with a reported address — never the worm's originator — with their addresses. (schema/README.md §13.5)";
const MAP_REFUSED: &str = "InitialMapSync refused with `malformed`: `chunkCount` 0, `chunkIndex >= chunkCount`, `hop1` outside chunk 0, `chunkCount` differing within one map; `tooLarge`: `chunkCount` > 16, more than 1,024 hop-1 / 65,536 hop-2 entries in one map; otherwise `Ack` (a non-empty `hop3` is ignored, not refused) (schema/README.md §13.9); An error on one stream never closes the connection (§1)";
const DIFF_REFUSED: &str = "RoutingDiff refused with `malformed`: `addressChanged` in a hop-2 change; `tooLarge`: more than 1,024 / 16,384 changes, or a report pushed over its bounds (§13.2) (schema/README.md §13.9); A diff that would take the report over its bounds (1,024 hop-1, 65,536 hop-2 entries) is not applied [...] on a bidirectional stream it is refused `tooLarge` (§13.2)";
const WORM_REFUSED: &str = "WormRequest refused with `malformed`: `ttl` > 5, `wormId` not 16 bytes, ids not 32 bytes, no `originator`; `tooLarge`: more than 16 targets or PostIds, 64 visited (schema/README.md §13.9); An error on one stream never closes the connection (§1)";
const TTL0: &str = "`ttl` rules: at most 5 (`malformed` above, at decode); a relay forwards with exactly `ttl` − 1 and never forwards a worm that arrived with `ttl` 0. [...] Otherwise (`ttl` 0, `visited` full, no candidate, or only PostIds sought): answer without hits, with `closest`. (schema/README.md §13.5)";
const LOOP: &str = "Duplicates and loops: if W's `wormId` is one the node received in a `WormRequest` (or started) within the last 60 s, or W's `visited` holds the node's own NodeId, it answers at once with a `WormResponse` without hits or `closest`. (schema/README.md §13.5)";
const LOCAL: &str = "Local check, for each target T: hop 0 → a hit (`hops` 0, the node's own addresses); hop 1 → a hit (`hops` 1, T's advertised addresses); hop 2 or 3 → resolved by `AddressRequest` as in §13.7 (depth 0 to a hop-2 reporter [...]) within 400 ms → a hit (`hops` 2 or 3) if found. [...] `WormQuery` is answered from the responder's own map by step 3 above [...] It is never forwarded and causes no fan-out. (schema/README.md §13.5)";
const FANOUT: &str = "Fan-out, at the same time as 3: a `WormQuery` (same `wormId`, `targets`, `postIds`) to every peer that declared `worm/1`, is not in W's `visited` and is not S, each with a 500 ms timeout. (schema/README.md §13.5)";
const FORWARD: &str = "Otherwise, forward, if W's `ttl` > 0 and `visited` has fewer than 64 entries: send W' = W with `ttl` − 1 and the node's own NodeId appended to `visited` (`wormId`, `targets`, `postIds` and `originator` unchanged) to the peer chosen by the forward step for the first target (schema/README.md §13.5)";
const CHOICE: &str = "Candidates are pairs (via, known): (P, P) for every peer P, and (P, N) for every hop-2 node N and every peer P whose report lists N at its hop 1 (a report's entries for this node itself or for one of its own peers are not candidates: a peer is reached only directly), and (P, C) for every peer P whose `WormQuery` answer in this relay's fan-out (step 4) named `closest` C [...] Excluded are the pairs whose `via` is in the `visited` of W' (which includes the node itself), is S, or was already tried for this worm. Choice: the pair whose `known` is XOR-closest to T; among pairs with the same `known`, a direct pair first, then the smallest `via`. The worm goes to `via`. (schema/README.md §13.5)";
const WORM_RATE: &str = "Rate limits (checked before any other work; over a limit the answer is `rateLimited` with `retryAfterMs`, and nothing is done): WormRequest 20 per minute per connection, 20 per minute per claimed originator, keyed by `originator.nodeId`, across all connections (schema/README.md §13.5); a limit of \"N per minute\" is a token bucket of capacity N refilled continuously at N per 60 s; a refusal carries `retryAfterMs` [...] at least 1 (§13)";
const QUERY_RATE: &str = "Rate limits: `WormQuery` 120 per minute per connection (schema/README.md §13.5); a limit of \"N per minute\" is a token bucket of capacity N refilled continuously at N per 60 s; a refusal carries `retryAfterMs` [...] at least 1 (§13)";
const DEPTH: &str = "`depth` (0, 1 or 2; above 2 is `malformed`) is how many referral steps the responder may take for the requester. (schema/README.md §13.7); AddressRequest refused with `malformed`: `depth` > 2 [...]; `tooLarge`: more than 64 targets (§13.9)";
const ENTRIES: &str = "For each target T, in request order, the responder answers one `AddressEntry`: hop 0 (the responder) → `found`, its own addresses (§13.1); not found if it has none; hop 1 → `found` with T's advertised addresses; not found if T advertised none; hop 2 → not found, `referral` = a peer that reports T; unknown → not found, no referral (schema/README.md §13.7)";
const SELF_ADDR: &str = "hop 0 (the responder) → `found`, its own addresses (§13.1); not found if it has none (schema/README.md §13.7); A node's own addresses (hop 0) are those it advertises; an unspecified IP is replaced by its address as observed by a peer [...] and left out otherwise (§13.1)";
const DEPTH1: &str = "T at hop 2, `depth` ≥ 1: asks that peer with `depth` − 1 and answers with its entry for T [...] A relayed entry is passed on as received (schema/README.md §13.7)";
const SILENT: &str = "A peer that advertised no address is reported with an empty address list: its NodeId appears in the maps of nodes up to three hops away, but no address for it is ever handed out (`AddressEntry.found = false`, no worm hit). (schema/README.md §13.1)";
const UNSPECIFIED: &str = "an advertised address with an unspecified IP (`0.0.0.0:P`, `[::]:P`, \"the IP you see me at, this port\", `wire.capnp`) is reported as the IP the node sees the peer at, with port P. (schema/README.md §13.1)";

/// The MESH cases.
#[allow(clippy::too_many_lines)]
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Limit, Negative, Positive};
    use Level::Must;
    let r = Role::Any;
    let gap = Duration::from_secs(25);
    let cases = vec![
        def("MESH-13.4-001", Must, Positive, r, MESH, "after a Hello declaring mesh/1 the target pushes its InitialMapSync: seq 0, hop3 empty, chunks as §13.4", "schema/README.md §13.4", INITIAL)
            .run(|ctx| Box::pin(map::pushed(ctx))),
        def("MESH-13.1-002", Must, Positive, r, MESH, "a peer is reported at hop 1 with exactly its advertised addresses; one that advertised none with none", "schema/README.md §13.1", ADVERTISED)
            .run(|ctx| Box::pin(map::hop1_addresses(ctx))),
        def("MESH-13-003", Must, Negative, r, MESH, "a connection that did not declare mesh/1 is not in the map", "schema/README.md §13", PEER)
            .run(|ctx| Box::pin(map::not_mesh(ctx))),
        def("MESH-13.7-004", Must, Positive, r, MESH, "a peer's InitialMapSync is applied: its hop 1 and hop 2 are referred to it (hop 2 and hop 3 of the target)", "schema/README.md §13.1, §13.7", APPLIED)
            .run(|ctx| Box::pin(map::map_applied(ctx))),
        def("MESH-13.2-005", Must, Positive, r, MESH, "RoutingDiffs are applied in seq order: added entries are referred to the sender, removed ones are unknown again", "schema/README.md §13.2", DIFF)
            .run(|ctx| Box::pin(map::diff_applied(ctx))),
        def("MESH-13.3-006", Must, Positive, r, MESH, "a RoutingDiff with an already applied seq is acknowledged and ignored", "schema/README.md §13.3", SEQ)
            .run(|ctx| Box::pin(map::duplicate(ctx))),
        def("MESH-13.3-007", Must, Positive, r, MESH, "a RoutingDiff that arrives early is held and applied once the missing seq arrives", "schema/README.md §13.3", SEQ)
            .run(|ctx| Box::pin(map::held(ctx))),
        def("MESH-13.3-008", Must, Positive, r, MESH, "a seq gap not filled within 10 s: MapSyncRequest (lastSeq = applied) and the sender's report is dropped", "schema/README.md §13.3", GAP)
            .run(|ctx| Box::pin(map::gap_timer(ctx)))
            .needs(gap),
        def("MESH-13.3-009", Must, Positive, r, MESH, "more than 16 held diffs is a gap at once: MapSyncRequest without waiting for the 10 s timer", "schema/README.md §13.3", GAP)
            .run(|ctx| Box::pin(map::gap_count(ctx)))
            .needs(Duration::from_secs(15)),
        def("MESH-13.3-010", Must, Positive, r, MESH, "MapSyncRequest is acknowledged and answered with a fresh InitialMapSync", "schema/README.md §13.3", SERVE)
            .run(|ctx| Box::pin(map::resync_served(ctx))),
        def("MESH-13.3-011", Must, Negative, r, MESH, "a second MapSyncRequest within 60 s is rateLimited with retryAfterMs", "schema/README.md §13.3", SERVE_ONCE)
            .run(|ctx| Box::pin(map::resync_limited(ctx))),
        def("MESH-13.9-012", Must, Negative, r, MESH, "InitialMapSync with chunkCount 0 is malformed", "schema/README.md §13.9", MAP_REFUSED)
            .run(|ctx| Box::pin(refuse::count_zero(ctx))),
        def("MESH-13.9-013", Must, Negative, r, MESH, "InitialMapSync with chunkIndex >= chunkCount is malformed", "schema/README.md §13.9", MAP_REFUSED)
            .run(|ctx| Box::pin(refuse::index_past(ctx))),
        def("MESH-13.9-014", Must, Negative, r, MESH, "InitialMapSync with hop1 outside chunk 0 is malformed", "schema/README.md §13.9", MAP_REFUSED)
            .run(|ctx| Box::pin(refuse::hop1_later(ctx))),
        def("MESH-13.9-015", Must, Negative, r, MESH, "InitialMapSync with chunkCount 17 is tooLarge", "schema/README.md §13.9", MAP_REFUSED)
            .run(|ctx| Box::pin(refuse::count_17(ctx))),
        def("MESH-13.9-016", Must, Negative, r, MESH, "an InitialMapSync chunk whose chunkCount differs within one map is malformed", "schema/README.md §13.9", MAP_REFUSED)
            .run(|ctx| Box::pin(refuse::count_differs(ctx))),
        def("MESH-13.9-017", Must, Negative, r, MESH, "InitialMapSync with 1,025 hop-1 entries is tooLarge", "schema/README.md §13.9", MAP_REFUSED)
            .run(|ctx| Box::pin(refuse::hop1_over(ctx))),
        def("MESH-13.9-018", Must, Limit, r, MESH, "one map with more than 65,536 hop-2 entries in total is tooLarge", "schema/README.md §13.9", MAP_REFUSED)
            .run(|ctx| Box::pin(refuse::hop2_total_over(ctx))),
        def("MESH-13.9-019", Must, Positive, r, MESH, "InitialMapSync with a non-empty hop3 is acknowledged (ignored, not refused)", "schema/README.md §13.9", MAP_REFUSED)
            .run(|ctx| Box::pin(refuse::hop3_ignored(ctx))),
        def("MESH-13.9-020", Must, Negative, r, MESH, "RoutingDiff with addressChanged in a hop-2 change is malformed", "schema/README.md §13.9", DIFF_REFUSED)
            .run(|ctx| Box::pin(refuse::hop2_address_changed(ctx))),
        def("MESH-13.9-021", Must, Negative, r, MESH, "RoutingDiff with 1,025 hop-1 changes is tooLarge", "schema/README.md §13.9", DIFF_REFUSED)
            .run(|ctx| Box::pin(refuse::diff_hop1_over(ctx))),
        def("MESH-13.9-022", Must, Negative, r, MESH, "RoutingDiff with 16,385 hop-2 changes is tooLarge", "schema/README.md §13.9", DIFF_REFUSED)
            .run(|ctx| Box::pin(refuse::diff_hop2_over(ctx))),
        def("MESH-13.9-023", Must, Limit, r, MESH, "a RoutingDiff that would push the report over 1,024 hop-1 entries is tooLarge", "schema/README.md §13.2, §13.9", DIFF_REFUSED)
            .run(|ctx| Box::pin(refuse::report_over(ctx))),
        def("MESH-13.9-024", Must, Limit, r, MESH, "RoutingDiff with 1,024 hop-1 changes (the limit) is acknowledged", "schema/README.md §13.9", DIFF_REFUSED)
            .run(|ctx| Box::pin(refuse::diff_hop1_at_cap(ctx))),
        def("MESH-13.4-025", Must, Positive, r, MESH, "a map in several chunks replaces the peer's report only when all chunks have arrived", "schema/README.md §13.4", STAGING)
            .run(|ctx| Box::pin(map::staging(ctx))),
        def("MESH-13.3-026", Must, Positive, r, MESH, "when a fresh map is applied, held diffs at or below its seq are dropped and the rest applied", "schema/README.md §13.3", HELD_MAP)
            .run(|ctx| Box::pin(map::map_drops_held(ctx))),
        def("MESH-13.2-027", Must, Negative, r, MESH, "a diff change that names the receiver itself is ignored (no address injected for it)", "schema/README.md §13.2", SELF_CHANGE)
            .run(|ctx| Box::pin(map::names_receiver(ctx))),
        def("MESH-13.2-028", Must, Negative, r, MESH, "a hop-1 change that names the sender itself is ignored (a peer cannot report an address for itself)", "schema/README.md §13.2", SELF_CHANGE)
            .run(|ctx| Box::pin(map::names_sender(ctx))),
        def("MESH-13.9-030", Must, Negative, r, WORM, "WormRequest with ttl 6 is malformed", "schema/README.md §13.5, §13.9", WORM_REFUSED)
            .run(|ctx| Box::pin(worm::ttl6(ctx))),
        def("MESH-13.9-031", Must, Negative, r, WORM, "WormRequest with a 15-byte wormId is malformed", "schema/README.md §13.9", WORM_REFUSED)
            .run(|ctx| Box::pin(worm::short_id(ctx))),
        def("MESH-13.9-032", Must, Negative, r, WORM, "WormRequest without originator is malformed", "schema/README.md §13.9", WORM_REFUSED)
            .run(|ctx| Box::pin(worm::no_originator(ctx))),
        def("MESH-13.9-033", Must, Negative, r, WORM, "WormRequest with 17 targets is tooLarge", "schema/README.md §13.9", WORM_REFUSED)
            .run(|ctx| Box::pin(worm::targets_over(ctx))),
        def("MESH-13.9-034", Must, Negative, r, WORM, "WormRequest with 65 visited is tooLarge", "schema/README.md §13.9", WORM_REFUSED)
            .run(|ctx| Box::pin(worm::visited_over(ctx))),
        def("MESH-13.5-035", Must, Negative, r, WORM, "a WormRequest with ttl 0 for an unknown node is answered without hits and never forwarded", "schema/README.md §13.5", TTL0)
            .run(|ctx| Box::pin(worm::ttl0_not_forwarded(ctx))),
        def("MESH-13.5-036", Must, Negative, r, WORM, "a WormRequest whose wormId was seen within 60 s gets an empty answer", "schema/README.md §13.5", LOOP)
            .run(|ctx| Box::pin(worm::duplicate_id(ctx))),
        def("MESH-13.5-037", Must, Negative, r, WORM, "a WormRequest whose visited holds the target's own id gets an empty answer", "schema/README.md §13.5", LOOP)
            .run(|ctx| Box::pin(worm::visited_self(ctx))),
        def("MESH-13.5-038", Must, Positive, r, WORM, "WormQuery for a hop-1 peer: a hit with its advertised address, hops 1", "schema/README.md §13.5", LOCAL)
            .run(|ctx| Box::pin(worm::hop1_hit(ctx))),
        def("MESH-13.5-039", Must, Positive, r, WORM, "WormQuery for a node a peer reports at its hop 1: a hit with its address, hops 2", "schema/README.md §13.5", LOCAL)
            .run(|ctx| Box::pin(worm::hop2_hit(ctx))),
        def("MESH-13.5-040", Must, Negative, r, WORM, "WormQuery is answered from the map: never forwarded, no fan-out", "schema/README.md §13.5", LOCAL)
            .run(|ctx| Box::pin(worm::query_no_fanout(ctx))),
        def("MESH-13.5-041", Must, Positive, r, WORM, "a relay fans out exactly one WormQuery to each worm/1 peer except the sender", "schema/README.md §13.5", FANOUT)
            .run(|ctx| Box::pin(worm::fanout(ctx))),
        def("MESH-13.5-042", Must, Positive, r, WORM, "a WormRequest with ttl 1 and no hit is forwarded once, with ttl 0 and the relay appended to visited", "schema/README.md §13.5", FORWARD)
            .run(|ctx| Box::pin(worm::forward(ctx))),
        def("MESH-13.5-043", Must, Positive, r, WORM, "the worm is forwarded to the peer XOR-closest to its target (the forward step)", "schema/README.md §13.5", CHOICE)
            .run(|ctx| Box::pin(worm::forward_closest(ctx))),
        def("MESH-13.5-049", Must, Negative, r, WORM, "the forward step takes no way to the relay itself from a peer's report", "schema/README.md §13.5", CHOICE)
            .run(|ctx| Box::pin(worm::forward_skips_reported(ctx, worm::Reported::Target))),
        def("MESH-13.5-056", Must, Negative, r, WORM, "the forward step reaches a peer only directly, never through another peer's report of it", "schema/README.md §13.5", CHOICE)
            .run(|ctx| Box::pin(worm::forward_skips_reported(ctx, worm::Reported::Sender))),
        def("MESH-13.5-044", Must, Limit, r, WORM, "the 21st WormRequest of a burst on one connection is rateLimited with retryAfterMs", "schema/README.md §13.5", WORM_RATE)
            .run(|ctx| Box::pin(worm::worm_rate_connection(ctx))),
        def("MESH-13.5-045", Must, Limit, r, WORM, "the WormRequest limit per claimed originator holds across connections", "schema/README.md §13.5", WORM_RATE)
            .run(|ctx| Box::pin(worm::worm_rate_originator(ctx))),
        def("MESH-13.5-046", Must, Limit, r, WORM, "the 121st WormQuery within a minute on one connection is rateLimited with retryAfterMs", "schema/README.md §13.5", QUERY_RATE)
            .run(|ctx| Box::pin(worm::query_rate(ctx)))
            .needs(Duration::from_secs(20)),
        def("MESH-13.5-047", Must, Limit, r, MESH, "the 121st AddressRequest within a minute on one connection is rateLimited with retryAfterMs", "schema/README.md §13.5", ADDR_RATE)
            .run(|ctx| Box::pin(worm::address_rate(ctx)))
            .needs(Duration::from_secs(20)),
        def("MESH-13.5-048", Must, Negative, r, WORM, "a worm answer's closest is never the worm's originator", "schema/README.md §13.5", CLOSEST)
            .run(|ctx| Box::pin(worm::closest_not_originator(ctx))),
        def("MESH-13.9-050", Must, Negative, r, MESH, "AddressRequest with depth 3 is malformed", "schema/README.md §13.7, §13.9", DEPTH)
            .run(|ctx| Box::pin(addr::depth3(ctx))),
        def("MESH-13.7-051", Must, Positive, r, MESH, "AddressRequest from the map: one entry per target in request order (unknown, hop 1, hop 2)", "schema/README.md §13.7", ENTRIES)
            .run(|ctx| Box::pin(addr::order(ctx))),
        def("MESH-13.7-052", Must, Positive, r, MESH, "AddressRequest for the target itself: its advertised addresses", "schema/README.md §13.7", SELF_ADDR)
            .run(|ctx| Box::pin(addr::itself(ctx))),
        def("MESH-13.7-053", Must, Negative, r, MESH, "AddressRequest for an unknown node: not found, no referral", "schema/README.md §13.7", ENTRIES)
            .run(|ctx| Box::pin(addr::unknown(ctx))),
        def("MESH-13.7-054", Must, Positive, r, MESH, "AddressRequest depth 1 for a hop-2 node: the target asks the reporter with depth 0 and relays its entry", "schema/README.md §13.7", DEPTH1)
            .run(|ctx| Box::pin(addr::depth1(ctx))),
        def("MESH-13.9-055", Must, Negative, r, MESH, "AddressRequest with 65 targets is tooLarge", "schema/README.md §13.9", DEPTH)
            .run(|ctx| Box::pin(addr::over(ctx))),
        def("MESH-13.1-060", Must, Negative, r, MESH, "a peer that advertised no listen address is never handed out (AddressRequest, WormQuery, WormRequest)", "schema/README.md §13.1", SILENT)
            .run(|ctx| Box::pin(addr::silent_peer(ctx))),
        def("MESH-13.1-061", Must, Positive, r, MESH, "an advertised unspecified IP is reported as the IP the peer is seen at", "schema/README.md §13.1", UNSPECIFIED)
            .run(|ctx| Box::pin(addr::unspecified_ip(ctx))),
    ];
    // Several testers per case, each waiting (bounded) for the target's
    // map: more than the run's default 10 s against a slow target.
    cases
        .into_iter()
        .map(|c| {
            if c.needs.is_some() {
                c
            } else {
                c.needs(Duration::from_secs(20))
            }
        })
        .collect()
}
