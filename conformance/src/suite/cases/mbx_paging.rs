//! MBX (paging): `ListChannels` pages with a keyset cursor, channels with
//! waiting messages first (schema/README.md §9, mailbox.capnp
//! `ListChannels.after/limit/pendingOnly`, `ListChannelsResponse.more/next`).
//!
//! Every case makes channels with fresh peers (valid Ed25519 keys that
//! never connect). The checks hold whatever else the caller's listing
//! holds (a re-run against the same target with the same seed finds the
//! first run's channels too).

use distsoc_schema::mailbox_capnp;

use super::def;
use super::mbx::{create_frame, send};
use crate::suite::client::Reply;
use crate::suite::ctx::{expect_code, expect_error, CaseError, Ctx, Outcome, Session};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::{self, code, PROTOCOL_VERSION as V};

const CAP: Option<&str> = Some("mailbox/1");

const ORDER: &str = "The listing order is: every channel with messages waiting for the caller (\"waiting\" phase), then every other channel (\"empty\" phase); within a phase by channel id, bytewise ascending. Channels with waiting messages are therefore never behind empty ones. (schema/README.md §9)";
const PAGING: &str = "`after` is empty (from the start) or the previous response's `next`: 17 bytes, a phase byte (0 = waiting, 1 = empty) and the last channel id listed [...] `next` is present exactly when `more` is true. A channel that does not change phase during the listing is listed exactly once. (schema/README.md §9)";
const PENDING: &str = "pendingOnly: When true, list only channels with messages waiting for the caller (the waiting phase). (mailbox.capnp ListChannels)";
const CURSOR: &str = "The listing continues after that position whether or not the channel exists (the cursor is a position, not a lookup [...]). Any other length, or a phase byte above 1, is refused with `malformed`. (mailbox.capnp ListChannels.after)";
const OLD: &str = "A client that sends only `version` (an implementation from before paging) gets the first page of the whole listing, waiting channels first. (schema/README.md §9)";

/// Empty channels made per case: a listing that ignored the order would
/// put the waiting channel first by chance once in `EMPTY + 1` runs.
const EMPTY: usize = 4;

/// ListChannels with every field.
fn list_frame(after: &[u8], limit: u32, pending_only: bool) -> Vec<u8> {
    wire::build::<mailbox_capnp::list_channels::Owned, _>(code::LIST_CHANNELS, |mut b| {
        b.set_version(V);
        b.set_after(after);
        b.set_limit(limit);
        b.set_pending_only(pending_only);
    })
}

/// One page as read with the schema's reader.
struct Page {
    /// (channel id, queued).
    rows: Vec<(Vec<u8>, u32)>,
    more: bool,
    next: Vec<u8>,
}

fn read_page(reply: &Reply) -> Result<Page, String> {
    let f = expect_code(reply, code::LIST_CHANNELS_RESPONSE)?;
    let reader = f.reader();
    let r: mailbox_capnp::list_channels_response::Reader<'_> =
        reader.get_root().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for c in r.get_channels().map_err(|e| e.to_string())?.iter() {
        rows.push((
            c.get_channel_id().map_err(|e| e.to_string())?.to_vec(),
            c.get_queued(),
        ));
    }
    Ok(Page {
        rows,
        more: r.get_more(),
        next: r.get_next().map_err(|e| e.to_string())?.to_vec(),
    })
}

async fn page(s: &Session, after: &[u8], limit: u32, pending_only: bool) -> Result<Page, String> {
    read_page(&s.request(&list_frame(after, limit, pending_only)).await)
        .map_err(|e| format!("ListChannels got {e}"))
}

fn hex8(b: &[u8]) -> String {
    hex::encode(&b[..b.len().min(8)])
}

/// A valid identity key that never connects.
fn fresh_peer(ctx: &mut Ctx) -> [u8; 32] {
    distsoc_protocol::sign::SigningKey::from_seed(&ctx.random32()).public()
}

/// `n` channels of `s` with fresh peers, sorted by id.
async fn empty_channels(ctx: &mut Ctx, s: &Session, n: usize) -> Result<Vec<Vec<u8>>, CaseError> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let peer = fresh_peer(ctx);
        let reply = s.request(&create_frame(&peer)).await;
        let f = expect_code(&reply, code::CREATE_CHANNEL_RESPONSE)
            .map_err(|e| CaseError::Setup(format!("CreateChannel (setup) got {e}")))?;
        let reader = f.reader();
        let r: mailbox_capnp::create_channel_response::Reader<'_> = reader
            .get_root()
            .map_err(|e| CaseError::Setup(e.to_string()))?;
        ids.push(
            r.get_channel_id()
                .map_err(|e| CaseError::Setup(e.to_string()))?
                .to_vec(),
        );
    }
    ids.sort();
    Ok(ids)
}

/// The caller X with [`EMPTY`] empty channels and one channel from Y with
/// a message waiting for X: (X, the empty ids, the waiting id).
async fn with_waiting(ctx: &mut Ctx) -> Result<(Session, Vec<Vec<u8>>, Vec<u8>), CaseError> {
    let (sx, sy) = (ctx.random32(), ctx.random32());
    let x = ctx.connect_as(sx).await?;
    let empty = empty_channels(ctx, &x, EMPTY).await?;
    let y = ctx.connect_as(sy).await?;
    let reply = y.request(&create_frame(&x.client_id)).await;
    let f = expect_code(&reply, code::CREATE_CHANNEL_RESPONSE)
        .map_err(|e| CaseError::Setup(format!("CreateChannel (setup) got {e}")))?;
    let reader = f.reader();
    let r: mailbox_capnp::create_channel_response::Reader<'_> = reader
        .get_root()
        .map_err(|e| CaseError::Setup(e.to_string()))?;
    let waiting = r
        .get_channel_id()
        .map_err(|e| CaseError::Setup(e.to_string()))?
        .to_vec();
    send(&y, &waiting, &x.client_id, b"mbx-paging waiting")
        .await
        .map_err(CaseError::Setup)?;
    Ok((x, empty, waiting))
}

async fn every_channel_once(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let ids = empty_channels(ctx, &s, 3).await?;
    let expected = "with limit 1: one channel per page, in listing order (waiting first, then by id), each page but the last with more = true and next = phase ‖ its channel id, the last with more = false and no next; the three new empty channels each listed once";
    let mut after = Vec::new();
    let mut seen: Vec<(Vec<u8>, u32)> = Vec::new();
    let mut log = Vec::new();
    for _ in 0..(ids.len() + 50) {
        let p = match page(&s, &after, 1, false).await {
            Ok(p) => p,
            Err(e) => return Ok(Outcome::fail(expected, e)),
        };
        log.push(format!(
            "[{}] more {} next {}",
            p.rows
                .iter()
                .map(|(id, _)| hex8(id))
                .collect::<Vec<_>>()
                .join(","),
            p.more,
            hex8(&p.next)
        ));
        if p.rows.len() > 1 {
            return Ok(Outcome::fail(expected, log.join("; ")));
        }
        seen.extend(p.rows.iter().cloned());
        if !p.more {
            // Waiting channels first, then by id within each phase.
            let key = |(id, q): &(Vec<u8>, u32)| (*q == 0, id.clone());
            let ordered = seen.windows(2).all(|w| key(&w[0]) < key(&w[1]));
            let each_once = ids
                .iter()
                .all(|id| seen.iter().filter(|(s, _)| s == id).count() == 1);
            return Ok(Outcome::check(
                ordered && each_once && p.next.is_empty(),
                expected,
                log.join("; "),
            ));
        }
        let well_formed = p.next.len() == 17
            && p.rows
                .first()
                .is_some_and(|(id, q)| p.next[1..] == id[..] && p.next[0] == u8::from(*q == 0));
        if !well_formed {
            return Ok(Outcome::fail(expected, log.join("; ")));
        }
        after = p.next;
    }
    Ok(Outcome::fail(
        expected,
        format!("the listing did not end: {}", log.join("; ")),
    ))
}

async fn waiting_first(ctx: &mut Ctx, limit: u32) -> Result<Outcome, CaseError> {
    let (x, empty, waiting) = with_waiting(ctx).await?;
    let expected = format!(
        "the channel with a message waiting for the caller (and any other waiting one) is listed before the {EMPTY} new empty ones (request: {})",
        if limit == 0 { "version only" } else { "limit 2" }
    );
    let frame = if limit == 0 {
        crate::suite::ctx::req::list_channels(V)
    } else {
        list_frame(&[], limit, false)
    };
    let p = match read_page(&x.request(&frame).await) {
        Ok(p) => p,
        Err(e) => return Ok(Outcome::fail(expected, format!("ListChannels got {e}"))),
    };
    let actual = p
        .rows
        .iter()
        .map(|(id, q)| format!("{}({q})", hex8(id)))
        .collect::<Vec<_>>()
        .join(", ");
    // Channels with waiting messages form a prefix; the new waiting
    // channel is in it and every new empty channel after it.
    let split = p.rows.iter().take_while(|(_, q)| *q >= 1).count();
    let prefix_ok = p.rows[split..].iter().all(|(_, q)| *q == 0);
    let waiting_ok = p.rows[..split].iter().any(|(id, _)| *id == waiting);
    let rest_ok = if limit == 0 {
        empty
            .iter()
            .all(|id| p.rows[split..].iter().any(|(r, _)| r == id))
    } else {
        p.rows.len() == 2 && p.more
    };
    let first_ok = prefix_ok && (waiting_ok || (limit != 0 && split == p.rows.len()));
    Ok(Outcome::check(first_ok && rest_ok, expected, actual))
}

async fn pending_only(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (x, empty, waiting) = with_waiting(ctx).await?;
    let expected = "pendingOnly lists only channels with messages waiting (queued ≥ 1), among them the new one, none of the new empty ones, and more = false";
    match page(&x, &[], 0, true).await {
        Ok(p) => Ok(Outcome::check(
            p.rows.iter().all(|(_, q)| *q >= 1)
                && p.rows.iter().any(|(id, _)| *id == waiting)
                && !p.rows.iter().any(|(id, _)| empty.contains(id))
                && !p.more,
            expected,
            format!(
                "[{}] more {}",
                p.rows
                    .iter()
                    .map(|(id, q)| format!("{}({q})", hex8(id)))
                    .collect::<Vec<_>>()
                    .join(", "),
                p.more
            ),
        )),
        Err(e) => Ok(Outcome::fail(expected, e)),
    }
}

async fn bad_cursor(ctx: &mut Ctx, after: Vec<u8>, what: &str) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let reply = s.exchange(&list_frame(&after, 0, false)).await;
    let expected = format!("ListChannels with {what}: Error(malformed)");
    let o = match expect_error(&reply, &["malformed"]) {
        Ok(e) => Outcome::pass(&expected, e.to_string()),
        Err(got) => Outcome::fail(&expected, got),
    };
    Ok(o.and_usable(ctx.still_usable(&s).await))
}

async fn cursor_is_a_position(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let ids = empty_channels(ctx, &s, 3).await?;
    let expected = "a cursor naming no channel is a position: after 0x01 ‖ 00…00 the three new empty channels are listed; after 0x01 ‖ ff…ff none, more = false; no error";
    let mut low = vec![1u8];
    low.extend_from_slice(&[0u8; 16]);
    let mut high = vec![1u8];
    high.extend_from_slice(&[0xffu8; 16]);
    let (a, b) = match (
        page(&s, &low, 0, false).await,
        page(&s, &high, 0, false).await,
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Ok(Outcome::fail(expected, e)),
    };
    let listed: Vec<Vec<u8>> = a.rows.iter().map(|(id, _)| id.clone()).collect();
    Ok(Outcome::check(
        ids.iter().all(|id| listed.contains(id)) && !a.more && b.rows.is_empty() && !b.more,
        expected,
        format!(
            "after 00…: {} channel(s), more {}; after ff…: {} channel(s), more {}",
            a.rows.len(),
            a.more,
            b.rows.len(),
            b.more
        ),
    ))
}

/// The MBX paging cases.
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Negative, Positive};
    use Level::{Must, Should};
    let r = Role::Anchor;
    vec![
        def(
            "MBX-9-200",
            Must,
            Positive,
            r,
            CAP,
            "ListChannels pages with limit/after: every channel once, in order, with more/next",
            "schema/README.md §9",
            PAGING,
        )
        .run(|ctx| Box::pin(every_channel_once(ctx))),
        def(
            "MBX-9-201",
            Must,
            Positive,
            r,
            CAP,
            "a version-only ListChannels lists the channel with waiting messages before empty ones",
            "schema/README.md §9",
            OLD,
        )
        .run(|ctx| Box::pin(waiting_first(ctx, 0))),
        def(
            "MBX-9-202",
            Must,
            Positive,
            r,
            CAP,
            "a page of ListChannels starts with the channels that have waiting messages",
            "schema/README.md §9",
            ORDER,
        )
        .run(|ctx| Box::pin(waiting_first(ctx, 2))),
        def(
            "MBX-9-203",
            Must,
            Positive,
            r,
            CAP,
            "ListChannels with pendingOnly lists exactly the channels with waiting messages",
            "mailbox.capnp ListChannels",
            PENDING,
        )
        .run(|ctx| Box::pin(pending_only(ctx))),
        def(
            "MBX-9-204",
            Must,
            Negative,
            r,
            CAP,
            "a ListChannels cursor of the wrong length is malformed",
            "mailbox.capnp ListChannels",
            CURSOR,
        )
        .run(|ctx| Box::pin(bad_cursor(ctx, vec![0u8; 16], "a 16-byte after"))),
        def(
            "MBX-9-205",
            Must,
            Negative,
            r,
            CAP,
            "a ListChannels cursor with a phase byte above 1 is malformed",
            "mailbox.capnp ListChannels",
            CURSOR,
        )
        .run(|ctx| {
            let mut after = vec![2u8];
            after.extend_from_slice(&[0u8; 16]);
            Box::pin(bad_cursor(ctx, after, "phase byte 2"))
        }),
        def(
            "MBX-9-206",
            Should,
            Positive,
            r,
            CAP,
            "a ListChannels cursor naming no channel continues after its position",
            "mailbox.capnp ListChannels",
            CURSOR,
        )
        .run(|ctx| Box::pin(cursor_is_a_position(ctx))),
    ]
}
