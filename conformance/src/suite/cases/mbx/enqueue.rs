//! MBX cases of `Enqueue`: membership, payload limits, idempotent retries,
//! durable acknowledgement.

use std::time::{Duration, Instant};

use super::{
    and_not_queued, big, bytes, enqueue_frame, fetch_all, fetch_frame, hex8, pair, read_enqueued,
    read_page, refused, request_within, send, Pair, F, NONMEMBER,
};
use crate::suite::client::Reply;
use crate::suite::ctx::{expect_error, CaseError, Ctx, Outcome, Session};
use crate::suite::wire::{self, code, PROTOCOL_VERSION as V};

// ---- Enqueue ---------------------------------------------------------------------

pub(super) async fn enqueue_ok(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let ttl = p.a.hello.limits.mailbox_ttl_ms;
    let payload = bytes(ctx, 100);
    let expected = format!(
        "EnqueueResponse with receivedAtMs > 0 and expiresAtMs = receivedAtMs + announced mailboxTtlMs ({ttl}) ± 1 s"
    );
    let e = tri!(send(&p.a, &p.ch, &p.b.client_id, &payload).await, expected);
    let life = e.expires.saturating_sub(e.received);
    Ok(Outcome::check(
        e.received > 0 && e.expires > e.received && life.abs_diff(ttl) <= 1000,
        expected,
        format!(
            "messageId {}, receivedAtMs {}, expiresAtMs {} (lifetime {life} ms)",
            e.id, e.received, e.expires
        ),
    ))
}

pub(super) async fn enqueue_delivered(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let payload = bytes(ctx, 1000);
    let expected = "the recipient's Fetch returns the message: same messageId, channelId, sender = the enqueuer, receivedAtMs/expiresAtMs of the EnqueueResponse, payload as enqueued";
    let e = tri!(send(&p.a, &p.ch, &p.b.client_id, &payload).await, expected);
    let page = tri!(fetch_all(&p.b, &p.ch).await, expected);
    let Some(m) = page.msgs.iter().find(|m| m.id == e.id) else {
        return Ok(Outcome::fail(
            expected,
            format!("messageId {} not delivered (got {:?})", e.id, page.ids()),
        ));
    };
    let mut bad = Vec::new();
    if m.channel != p.ch {
        bad.push(format!("channelId {}", hex::encode(&m.channel)));
    }
    if m.sender != p.a.client_id {
        bad.push(format!("sender {}", hex8(&m.sender)));
    }
    if (m.received, m.expires) != (e.received, e.expires) {
        bad.push(format!(
            "times {}/{} instead of {}/{}",
            m.received, m.expires, e.received, e.expires
        ));
    }
    if m.payload != payload {
        bad.push(format!(
            "payload of {} bytes differs from the {} enqueued",
            m.payload.len(),
            payload.len()
        ));
    }
    Ok(Outcome::check(
        bad.is_empty(),
        expected,
        if bad.is_empty() {
            format!("messageId {} delivered intact", e.id)
        } else {
            bad.join("; ")
        },
    ))
}

pub(super) async fn enqueue_nonmember(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let c = ctx.connect().await?;
    let payload = bytes(ctx, 64);
    let reply = c
        .request(&enqueue_frame(V, &p.ch, &p.b.client_id, &payload, &[]))
        .await;
    let o = refused(
        ctx,
        &c,
        &reply,
        &NONMEMBER,
        "a non-member's Enqueue into a foreign channel",
    )
    .await;
    Ok(and_not_queued(o, &p.b, &p.ch, &payload).await)
}

pub(super) async fn enqueue_forged(ctx: &mut Ctx, one_bit_off: bool) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let forged = if one_bit_off {
        let mut f = p.ch.clone();
        f[15] ^= 1;
        f
    } else {
        bytes(ctx, 16)
    };
    let payload = bytes(ctx, 64);
    let reply =
        p.a.request(&enqueue_frame(V, &forged, &p.b.client_id, &payload, &[]))
            .await;
    let what = if one_bit_off {
        "Enqueue to a channel id one bit off the caller's real channel"
    } else {
        "Enqueue to a random (never created) channel id"
    };
    let o = refused(ctx, &p.a, &reply, &NONMEMBER, what).await;
    Ok(and_not_queued(o, &p.b, &p.ch, &payload).await)
}

/// The Error codes a non-member gets for a foreign and for an unknown channel.
async fn nonmember_codes(
    ctx: &mut Ctx,
) -> Result<(Result<String, String>, Result<String, String>, Session), CaseError> {
    let p = pair(ctx).await?;
    let c = ctx.connect().await?;
    let unknown = bytes(ctx, 16);
    let payload = bytes(ctx, 32);
    let foreign = c
        .request(&enqueue_frame(V, &p.ch, &p.b.client_id, &payload, &[]))
        .await;
    let unknown = c
        .request(&enqueue_frame(V, &unknown, &p.b.client_id, &payload, &[]))
        .await;
    let name = |r: &Reply| {
        expect_error(r, &wire::ERROR_CODES)
            .map(|e| e.name())
            .map_err(|e| format!("not an Error: {e}"))
    };
    Ok((name(&foreign), name(&unknown), c))
}

pub(super) async fn nonmember_alike(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (foreign, unknown, c) = nonmember_codes(ctx).await?;
    let expected = "the same Error code for a foreign channel and for an unknown channel id";
    let o = match (foreign, unknown) {
        (Ok(f), Ok(u)) => Outcome::check(f == u, expected, format!("foreign: {f}, unknown: {u}")),
        (f, u) => Outcome::fail(expected, format!("foreign: {f:?}, unknown: {u:?}")),
    };
    Ok(o.and_usable(ctx.still_usable(&c).await))
}

pub(super) async fn nonmember_code(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (foreign, unknown, c) = nonmember_codes(ctx).await?;
    let expected = "Error(unauthorized) for a foreign and for an unknown channel id, as §9 names";
    let ok = foreign.as_deref() == Ok("unauthorized") && unknown.as_deref() == Ok("unauthorized");
    Ok(Outcome::check(
        ok,
        expected,
        format!("foreign: {foreign:?}, unknown: {unknown:?}"),
    )
    .and_usable(ctx.still_usable(&c).await))
}

pub(super) async fn enqueue_wrong_recipient(
    ctx: &mut Ctx,
    to_self: bool,
) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let to = if to_self {
        p.a.client_id
    } else {
        ctx.random32()
    };
    let payload = bytes(ctx, 64);
    let reply =
        p.a.request(&enqueue_frame(V, &p.ch, &to, &payload, &[]))
            .await;
    let what = if to_self {
        "a member's Enqueue whose recipient is the caller itself"
    } else {
        "a member's Enqueue whose recipient is a third identity"
    };
    let o = refused(ctx, &p.a, &reply, &["unauthorized"], what).await;
    let o = and_not_queued(o, &p.b, &p.ch, &payload).await;
    Ok(and_not_queued(o, &p.a, &p.ch, &payload).await)
}

pub(super) async fn enqueue_bad_channel_len(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let payload = bytes(ctx, 64);
    let reply =
        p.a.request(&enqueue_frame(
            V,
            &p.ch[..15],
            &p.b.client_id,
            &payload,
            &[],
        ))
        .await;
    Ok(refused(
        ctx,
        &p.a,
        &reply,
        &["malformed"],
        "Enqueue with a 15-byte channel id (a real id truncated)",
    )
    .await)
}

pub(super) async fn enqueue_bad_recipient_len(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = ctx.connect().await?;
    let to = bytes(ctx, 31);
    let payload = bytes(ctx, 64);
    let reply = a.request(&enqueue_frame(V, &[], &to, &payload, &[])).await;
    Ok(refused(
        ctx,
        &a,
        &reply,
        &["malformed"],
        "legacy Enqueue with a 31-byte recipient",
    )
    .await)
}

/// An empty payload: any Error (MBX-9-020), or exactly `malformed`
/// (MBX-9-603, schema/README.md §9); nothing is queued.
pub(super) async fn enqueue_empty(ctx: &mut Ctx, exact: bool) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let reply =
        p.a.request(&enqueue_frame(V, &p.ch, &p.b.client_id, &[], &[]))
            .await;
    let (allowed, what): (&[&str], _) = if exact {
        (
            &["malformed"],
            "Enqueue with an empty payload (a required field is absent)",
        )
    } else {
        (
            &wire::ERROR_CODES,
            "Enqueue with an empty payload (outside 1..=5242880)",
        )
    };
    let o = refused(ctx, &p.a, &reply, allowed, what).await;
    let mut o = o;
    o.expected.push_str("; nothing is queued");
    match fetch_all(&p.b, &p.ch).await {
        Ok(page) if page.msgs.is_empty() => o.actual.push_str("; queue empty"),
        Ok(page) => {
            o.passed = false;
            o.actual
                .push_str(&format!("; {} message(s) queued", page.msgs.len()));
        }
        Err(e) => {
            o.passed = false;
            o.actual.push_str(&format!("; {e}"));
        }
    }
    Ok(o)
}

/// The payload cap to test: the announced one, never above 5 MiB.
fn payload_cap(s: &Session) -> usize {
    let cap = s
        .hello
        .limits
        .max_mailbox_payload_bytes
        .min(5 * 1024 * 1024);
    usize::try_from(cap).unwrap_or(5 * 1024 * 1024)
}

pub(super) async fn enqueue_at_cap(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let cap = payload_cap(&p.a);
    let payload = big(ctx, cap);
    let frame = enqueue_frame(V, &p.ch, &p.b.client_id, &payload, &[]);
    let frame_cap = wire::cap_of(code::ENQUEUE).unwrap_or(0);
    let expected = format!(
        "a {cap}-byte payload (frame {} bytes ≤ cap {frame_cap}) is accepted and delivered intact",
        frame.len() - 1
    );
    let (reply, _) = request_within(&p.a, &frame, Duration::from_secs(8)).await;
    let e = tri!(read_enqueued(&reply), expected);
    let acked = Instant::now();
    let (reply, _) = request_within(
        &p.b,
        &fetch_frame(F {
            channel: &p.ch,
            ..F::default()
        }),
        Duration::from_secs(8),
    )
    .await;
    let page = tri!(read_page(&reply, code::FETCH_RESPONSE), expected);
    let ok = page
        .msgs
        .iter()
        .any(|m| m.id == e.id && m.payload == payload);
    let lifetime = Duration::from_millis(e.expires.saturating_sub(e.received));
    if !page.has(e.id) && acked.elapsed() >= lifetime {
        return Err(CaseError::Skipped(format!(
            "the message's lifetime ({} ms) passed before the suite could fetch it: delivery cannot be judged (a longer mailbox TTL is needed)",
            lifetime.as_millis()
        )));
    }
    Ok(Outcome::check(
        ok,
        expected,
        if ok {
            format!("messageId {} accepted and delivered intact", e.id)
        } else {
            format!(
                "accepted as {}, fetched {:?} ({} bytes)",
                e.id,
                page.ids(),
                page.msgs.iter().map(|m| m.payload.len()).sum::<usize>()
            )
        },
    ))
}

pub(super) async fn enqueue_over_cap(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let cap = payload_cap(&p.a);
    let payload = big(ctx, cap + 1);
    let frame = enqueue_frame(V, &p.ch, &p.b.client_id, &payload, &[]);
    let (reply, _) = request_within(&p.a, &frame, Duration::from_secs(8)).await;
    let o = refused(
        ctx,
        &p.a,
        &reply,
        &["tooLarge"],
        &format!(
            "a {}-byte payload in a {}-byte frame (under the Enqueue frame cap)",
            cap + 1,
            frame.len() - 1
        ),
    )
    .await;
    // Compare by length: the payload is too big to keep twice in reports.
    let mut o = o;
    o.expected.push_str("; nothing is queued");
    match fetch_all(&p.b, &p.ch).await {
        Ok(page) if page.msgs.is_empty() => o.actual.push_str("; queue empty"),
        Ok(page) => {
            o.passed = false;
            o.actual
                .push_str(&format!("; {} message(s) queued", page.msgs.len()));
        }
        Err(e) => {
            o.passed = false;
            o.actual.push_str(&format!("; {e}"));
        }
    }
    Ok(o)
}

pub(super) async fn enqueue_version(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let payload = bytes(ctx, 64);
    let reply =
        p.a.request(&enqueue_frame(V + 1, &p.ch, &p.b.client_id, &payload, &[]))
            .await;
    let o = refused(
        ctx,
        &p.a,
        &reply,
        &["unsupportedVersion"],
        "Enqueue with version 3 (above the current 2)",
    )
    .await;
    Ok(and_not_queued(o, &p.b, &p.ch, &payload).await)
}

pub(super) async fn enqueue_retry(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let payload = bytes(ctx, 200);
    let cmid = bytes(ctx, 16);
    let frame = enqueue_frame(V, &p.ch, &p.b.client_id, &payload, &cmid);
    let expected = "the retry with the same clientMessageId is acknowledged with the same messageId, and the recipient gets the message once";
    let first = tri!(read_enqueued(&p.a.request(&frame).await), expected);
    let second = tri!(read_enqueued(&p.a.request(&frame).await), expected);
    let page = tri!(fetch_all(&p.b, &p.ch).await, expected);
    let copies = page.has_payload(&payload);
    Ok(Outcome::check(
        first.id == second.id && copies == 1,
        expected,
        format!(
            "messageIds {} and {}; {copies} cop{} delivered",
            first.id,
            second.id,
            if copies == 1 { "y" } else { "ies" }
        ),
    ))
}

pub(super) async fn enqueue_cmid_other_queue(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let cmid = bytes(ctx, 16);
    let (p1, p2) = (bytes(ctx, 100), bytes(ctx, 100));
    let expected = "the same clientMessageId in the channel and in the recipient's legacy mailbox: two messages, both delivered";
    tri!(
        read_enqueued(
            &p.a.request(&enqueue_frame(V, &p.ch, &p.b.client_id, &p1, &cmid))
                .await
        ),
        expected
    );
    tri!(
        read_enqueued(
            &p.a.request(&enqueue_frame(V, &[], &p.b.client_id, &p2, &cmid))
                .await
        ),
        expected
    );
    let in_channel = tri!(fetch_all(&p.b, &p.ch).await, expected).has_payload(&p1);
    let in_legacy = tri!(fetch_all(&p.b, &[]).await, expected).has_payload(&p2);
    Ok(Outcome::check(
        in_channel == 1 && in_legacy == 1,
        expected,
        format!("channel: {in_channel}, legacy: {in_legacy}"),
    ))
}

/// A enqueues `n` payloads of `size` bytes to B: their ids.
pub(super) async fn enqueue_n(
    ctx: &mut Ctx,
    p: &Pair,
    n: usize,
    size: usize,
) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let payload = bytes(ctx, size);
        let e = send(&p.a, &p.ch, &p.b.client_id, &payload).await?;
        out.push((e.id, payload));
    }
    Ok(out)
}

pub(super) async fn enqueue_order(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let expected =
        "messageIds increase with enqueue order, and Fetch returns the messages in messageId order";
    let sent = tri!(enqueue_n(ctx, &p, 4, 50).await, expected);
    let ids: Vec<u64> = sent.iter().map(|s| s.0).collect();
    let page = tri!(fetch_all(&p.b, &p.ch).await, expected);
    let increasing = ids.windows(2).all(|w| w[0] < w[1]);
    Ok(Outcome::check(
        increasing && page.ids() == ids,
        expected,
        format!("enqueued {ids:?}, fetched {:?}", page.ids()),
    ))
}
