//! MBX cases of `Fetch` and `FetchWait`: own queue only, acknowledgement,
//! limits, waiting and wake-ups.

use std::time::Duration;

use super::enqueue::enqueue_n;
use super::{
    bytes, create_frame, fetch, fetch_all, fetch_frame, pair, read_created, read_page, refused,
    request_within, send, wait_frame, Created, Page, F, NONMEMBER,
};
use crate::suite::ctx::{CaseError, Ctx, Outcome, Session};
use crate::suite::wire::code;

// ---- Fetch -------------------------------------------------------------------------

pub(super) async fn fetch_own_only(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let payload = bytes(ctx, 80);
    let expected =
        "the sender's own Fetch of the channel does not return the message it sent to the peer";
    let e = tri!(send(&p.a, &p.ch, &p.b.client_id, &payload).await, expected);
    let page = tri!(fetch_all(&p.a, &p.ch).await, expected);
    Ok(Outcome::check(
        !page.has(e.id) && page.has_payload(&payload) == 0,
        expected,
        format!("sender fetched {:?}", page.ids()),
    ))
}

pub(super) async fn fetch_nonmember(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let c = ctx.connect().await?;
    let payload = bytes(ctx, 80);
    let expected = "queued A→B";
    tri!(send(&p.a, &p.ch, &p.b.client_id, &payload).await, expected);
    let reply = c
        .request(&fetch_frame(F {
            channel: &p.ch,
            ack: u64::MAX,
            ..F::default()
        }))
        .await;
    let mut o = refused(
        ctx,
        &c,
        &reply,
        &NONMEMBER,
        "a non-member's Fetch (ackThrough = 2^64-1) of a foreign channel",
    )
    .await;
    o.expected
        .push_str("; nothing is deleted: B still gets the message");
    match fetch_all(&p.b, &p.ch).await {
        Ok(page) if page.has_payload(&payload) == 1 => o.actual.push_str("; B still gets it"),
        Ok(page) => {
            o.passed = false;
            o.actual
                .push_str(&format!("; B's queue lost it (B got {:?})", page.ids()));
        }
        Err(e) => {
            o.passed = false;
            o.actual.push_str(&format!("; {e}"));
        }
    }
    Ok(o)
}

pub(super) async fn fetch_unknown(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let a = ctx.connect().await?;
    let ch = bytes(ctx, 16);
    let reply = a
        .request(&fetch_frame(F {
            channel: &ch,
            ..F::default()
        }))
        .await;
    Ok(refused(ctx, &a, &reply, &NONMEMBER, "Fetch of a random channel id").await)
}

pub(super) async fn fetch_bad_len(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let mut ch = p.ch.clone();
    ch.push(0);
    let reply =
        p.b.request(&fetch_frame(F {
            channel: &ch,
            ..F::default()
        }))
        .await;
    Ok(refused(
        ctx,
        &p.b,
        &reply,
        &["malformed"],
        "Fetch with a 17-byte channel id (a real id plus one byte)",
    )
    .await)
}

pub(super) async fn fetch_again(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let payload = bytes(ctx, 80);
    let expected = "a message fetched without ackThrough is returned again by the next Fetch";
    let e = tri!(send(&p.a, &p.ch, &p.b.client_id, &payload).await, expected);
    let one = tri!(fetch_all(&p.b, &p.ch).await, expected);
    let two = tri!(fetch_all(&p.b, &p.ch).await, expected);
    Ok(Outcome::check(
        one.has(e.id) && two.has(e.id),
        expected,
        format!("first {:?}, second {:?}", one.ids(), two.ids()),
    ))
}

pub(super) async fn fetch_ack(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let expected = "Fetch(ackThrough = id1) returns [id2, id3]; Fetch(ackThrough = id3) returns []";
    let sent = tri!(enqueue_n(ctx, &p, 3, 60).await, expected);
    let ids: Vec<u64> = sent.iter().map(|s| s.0).collect();
    let after1 = tri!(
        fetch(
            &p.b,
            F {
                channel: &p.ch,
                ack: ids[0],
                ..F::default()
            }
        )
        .await,
        expected
    );
    let after3 = tri!(
        fetch(
            &p.b,
            F {
                channel: &p.ch,
                ack: ids[2],
                ..F::default()
            }
        )
        .await,
        expected
    );
    Ok(Outcome::check(
        after1.ids() == ids[1..] && after3.msgs.is_empty(),
        expected,
        format!(
            "enqueued {ids:?}; after ack {}: {:?}; after ack {}: {:?}",
            ids[0],
            after1.ids(),
            ids[2],
            after3.ids()
        ),
    ))
}

pub(super) async fn ack_other_queue(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let expected = "B's Fetch with ackThrough = 2^64-1 on the channel deletes only B's queue: A still gets B's message";
    let payload = bytes(ctx, 70);
    tri!(send(&p.b, &p.ch, &p.a.client_id, &payload).await, expected);
    tri!(
        fetch(
            &p.b,
            F {
                channel: &p.ch,
                ack: u64::MAX,
                ..F::default()
            }
        )
        .await,
        expected
    );
    let page = tri!(fetch_all(&p.a, &p.ch).await, expected);
    Ok(Outcome::check(
        page.has_payload(&payload) == 1,
        expected,
        format!("A fetched {:?}", page.ids()),
    ))
}

pub(super) async fn fetch_max_messages(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let expected = "3 queued, maxMessages 2: the first two in messageId order with more = true; then (ackThrough the second) the third with more = false";
    let sent = tri!(enqueue_n(ctx, &p, 3, 60).await, expected);
    let ids: Vec<u64> = sent.iter().map(|s| s.0).collect();
    let first = tri!(
        fetch(
            &p.b,
            F {
                channel: &p.ch,
                max_messages: 2,
                ..F::default()
            }
        )
        .await,
        expected
    );
    let rest = tri!(
        fetch(
            &p.b,
            F {
                channel: &p.ch,
                ack: ids[1],
                max_messages: 2,
                ..F::default()
            }
        )
        .await,
        expected
    );
    Ok(Outcome::check(
        first.ids() == ids[..2] && first.more && rest.ids() == ids[2..] && !rest.more,
        expected,
        format!(
            "enqueued {ids:?}; got {:?} more={}, then {:?} more={}",
            first.ids(),
            first.more,
            rest.ids(),
            rest.more
        ),
    ))
}

pub(super) async fn fetch_max_bytes(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let expected = "3 × 1000 bytes queued, maxBytes 2500: the first two (≤ 2500 payload bytes) with more = true";
    let sent = tri!(enqueue_n(ctx, &p, 3, 1000).await, expected);
    let ids: Vec<u64> = sent.iter().map(|s| s.0).collect();
    let page = tri!(
        fetch(
            &p.b,
            F {
                channel: &p.ch,
                max_bytes: 2500,
                ..F::default()
            }
        )
        .await,
        expected
    );
    let total: usize = page.msgs.iter().map(|m| m.payload.len()).sum();
    Ok(Outcome::check(
        page.ids() == ids[..2] && page.more && total <= 2500,
        expected,
        format!(
            "enqueued {ids:?}; got {:?} ({total} bytes) more={}",
            page.ids(),
            page.more
        ),
    ))
}

pub(super) async fn fetch_at_least_one(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let expected = "2 × 2000 bytes queued, maxBytes 100: exactly the first message (at least one is returned), more = true";
    let sent = tri!(enqueue_n(ctx, &p, 2, 2000).await, expected);
    let page = tri!(
        fetch(
            &p.b,
            F {
                channel: &p.ch,
                max_bytes: 100,
                ..F::default()
            }
        )
        .await,
        expected
    );
    Ok(Outcome::check(
        page.ids() == [sent[0].0] && page.more,
        expected,
        format!(
            "enqueued {:?}; got {:?} more={}",
            sent.iter().map(|s| s.0).collect::<Vec<_>>(),
            page.ids(),
            page.more
        ),
    ))
}

// ---- FetchWait -------------------------------------------------------------------

/// A FetchWait with a reply bound of `timeout_ms` + 3 s.
pub(super) async fn wait(
    s: &Session,
    f: F<'_>,
    timeout_ms: u32,
) -> (Result<Page, String>, Duration) {
    let bound = Duration::from_millis(u64::from(timeout_ms) + 3000);
    let (reply, took) = request_within(s, &wait_frame(f, timeout_ms), bound).await;
    (
        read_page(&reply, code::FETCH_WAIT_RESPONSE).map_err(|e| format!("FetchWait got {e}")),
        took,
    )
}

pub(super) fn on(ch: &[u8]) -> F<'_> {
    F {
        channel: ch,
        ..F::default()
    }
}

pub(super) async fn wait_immediate(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let payload = bytes(ctx, 90);
    let expected = "FetchWait(timeoutMs 4000) with a message queued: a FetchWaitResponse (0x67) holding it, well before the timeout (< 2 s)";
    let e = tri!(send(&p.a, &p.ch, &p.b.client_id, &payload).await, expected);
    let (page, took) = wait(&p.b, on(&p.ch), 4000).await;
    let page = tri!(page, expected);
    Ok(Outcome::check(
        page.has(e.id) && took < Duration::from_secs(2),
        expected,
        format!("{:?} after {} ms", page.ids(), took.as_millis()),
    ))
}

pub(super) async fn wait_woken(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let payload = bytes(ctx, 90);
    let expected = "FetchWait(timeoutMs 4000) on B's connection is answered with the message A enqueues on its own connection ~300 ms later, well before the timeout (< 2.5 s)";
    let waiter = wait(&p.b, on(&p.ch), 4000);
    let sender = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(&p.a, &p.ch, &p.b.client_id, &payload).await
    };
    let ((page, took), sent) = tokio::join!(waiter, sender);
    let e = tri!(sent, expected);
    let page = tri!(page, expected);
    Ok(Outcome::check(
        page.has(e.id) && took < Duration::from_millis(2500),
        expected,
        format!("{:?} after {} ms", page.ids(), took.as_millis()),
    ))
}

/// A short timeout to measure: 600 ms, or the announced maximum if lower.
fn short_timeout(s: &Session) -> u32 {
    s.hello.limits.max_fetch_wait_ms.min(600)
}

pub(super) async fn wait_timeout(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let t = short_timeout(&p.b);
    let expected = format!(
        "FetchWait(timeoutMs {t}) with nothing queued: an empty FetchWaitResponse after ≥ {t} ms and < {} ms",
        t + 2000
    );
    let (page, took) = wait(&p.b, on(&p.ch), t).await;
    let page = tri!(page, expected);
    let ms = took.as_millis();
    // The anchor's timer starts after ours: it cannot answer before `t`
    // has passed on our clock (10 ms of timer granularity allowed).
    Ok(Outcome::check(
        page.msgs.is_empty() && ms + 10 >= u128::from(t) && ms < u128::from(t) + 2000,
        expected,
        format!("{} message(s) after {ms} ms", page.msgs.len()),
    ))
}

pub(super) async fn wait_zero(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let expected =
        "FetchWait(timeoutMs 0) with nothing queued answers at once (< 1 s) with an empty response";
    let (page, took) = wait(&p.b, on(&p.ch), 0).await;
    let page = tri!(page, expected);
    Ok(Outcome::check(
        page.msgs.is_empty() && took < Duration::from_secs(1),
        expected,
        format!(
            "{} message(s) after {} ms",
            page.msgs.len(),
            took.as_millis()
        ),
    ))
}

pub(super) async fn wait_clamped(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let max = p.b.hello.limits.max_fetch_wait_ms;
    if max <= 3000 {
        // The clamp itself is observable: the empty answer comes after the
        // announced maximum.
        let expected = format!(
            "FetchWait(timeoutMs 2^32-1) is clamped to the announced maxFetchWaitMs {max}: an empty response after ≥ {max} ms and < {} ms",
            max + 2000
        );
        let bound = Duration::from_millis(u64::from(max) + 3000);
        let (reply, took) = request_within(&p.b, &wait_frame(on(&p.ch), u32::MAX), bound).await;
        let page = tri!(read_page(&reply, code::FETCH_WAIT_RESPONSE), expected);
        let ms = took.as_millis();
        return Ok(Outcome::check(
            page.msgs.is_empty() && ms + 10 >= u128::from(max) && ms < u128::from(max) + 2000,
            expected,
            format!("{} message(s) after {ms} ms", page.msgs.len()),
        ));
    }
    let expected = format!(
        "FetchWait(timeoutMs 2^32-1, above the announced maxFetchWaitMs {max}) is clamped, not refused: it waits and is answered with the message enqueued ~300 ms later"
    );
    let payload = bytes(ctx, 40);
    let frame = wait_frame(on(&p.ch), u32::MAX);
    let waiter = request_within(&p.b, &frame, Duration::from_secs(5));
    let sender = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(&p.a, &p.ch, &p.b.client_id, &payload).await
    };
    let ((reply, took), sent) = tokio::join!(waiter, sender);
    let e = tri!(sent, expected);
    let page = tri!(read_page(&reply, code::FETCH_WAIT_RESPONSE), expected);
    Ok(Outcome::check(
        page.has(e.id),
        expected,
        format!("{:?} after {} ms", page.ids(), took.as_millis()),
    ))
}

pub(super) async fn wait_cancelled(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let payload = bytes(ctx, 90);
    let expected = "after B cancels its FetchWait (STOP_SENDING on the reply, RESET of its request side), a message A enqueues is not lost: B's next Fetch returns it";
    let (mut send_half, mut recv) = p.b.conn.open_bi().await?;
    crate::suite::client::write_all_on(
        &mut send_half,
        &wait_frame(on(&p.ch), 10_000),
        true,
        p.b.conn.number(),
    )
    .await
    .map_err(CaseError::Setup)?;
    // Let the anchor start waiting (the outcome does not depend on it).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = recv.stop(0u32.into());
    let _ = send_half.reset(0u32.into());
    drop((send_half, recv));
    let e = tri!(send(&p.a, &p.ch, &p.b.client_id, &payload).await, expected);
    let page = tri!(fetch_all(&p.b, &p.ch).await, expected);
    let o = Outcome::check(
        page.has(e.id),
        expected,
        format!("enqueued {}, B fetched {:?}", e.id, page.ids()),
    );
    Ok(o.and_usable(ctx.still_usable(&p.b).await))
}

pub(super) async fn wait_conn_closed(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (sa, sb) = (ctx.random32(), ctx.random32());
    let a = ctx.connect_as(sa).await?;
    let b = ctx.connect_as(sb).await?;
    let expected = "after B's connection closes during its FetchWait, a message A enqueues is not lost: B, reconnected, fetches it";
    let c = tri!(
        read_created(&a.request(&create_frame(&b.client_id)).await),
        expected
    );
    let (mut send_half, _recv) = b.conn.open_bi().await?;
    crate::suite::client::write_all_on(
        &mut send_half,
        &wait_frame(on(&c.channel), 10_000),
        true,
        b.conn.number(),
    )
    .await
    .map_err(CaseError::Setup)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.conn.close();
    drop(b);
    let payload = bytes(ctx, 90);
    let e = tri!(
        send(&a, &c.channel, &c_peer(&c, &a), &payload).await,
        expected
    );
    let b = ctx.connect_as(sb).await?;
    let page = tri!(fetch_all(&b, &c.channel).await, expected);
    Ok(Outcome::check(
        page.has(e.id),
        expected,
        format!("enqueued {}, B fetched {:?}", e.id, page.ids()),
    ))
}

/// The member of `c` that is not `s`.
fn c_peer(c: &Created, s: &Session) -> Vec<u8> {
    c.members
        .iter()
        .find(|m| m.as_slice() != s.client_id.as_slice())
        .cloned()
        .unwrap_or_default()
}

pub(super) async fn wait_nonmember(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let c = ctx.connect().await?;
    let (reply, took) =
        request_within(&c, &wait_frame(on(&p.ch), 3000), Duration::from_secs(6)).await;
    let mut o = refused(
        ctx,
        &c,
        &reply,
        &NONMEMBER,
        "a non-member's FetchWait(timeoutMs 3000) of a foreign channel",
    )
    .await;
    o.expected.push_str("; refused at once (< 2 s), not held");
    if took >= Duration::from_secs(2) {
        o.passed = false;
    }
    o.actual
        .push_str(&format!("; after {} ms", took.as_millis()));
    Ok(o)
}

pub(super) async fn wait_own_only(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let payload = bytes(ctx, 90);
    let expected = "A's FetchWait(timeoutMs 200) after A sent to B does not return A's own message (an empty response after the timeout)";
    tri!(send(&p.a, &p.ch, &p.b.client_id, &payload).await, expected);
    let (page, took) = wait(&p.a, on(&p.ch), 200).await;
    let page = tri!(page, expected);
    Ok(Outcome::check(
        page.has_payload(&payload) == 0,
        expected,
        format!("{:?} after {} ms", page.ids(), took.as_millis()),
    ))
}

pub(super) async fn wait_ack(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let p = pair(ctx).await?;
    let expected = "FetchWait(ackThrough = id1, timeoutMs 2000) returns [id2] at once; a Fetch after it returns [id2] (id1 deleted)";
    let sent = tri!(enqueue_n(ctx, &p, 2, 60).await, expected);
    let (id1, id2) = (sent[0].0, sent[1].0);
    let (page, _) = wait(
        &p.b,
        F {
            channel: &p.ch,
            ack: id1,
            ..F::default()
        },
        2000,
    )
    .await;
    let page = tri!(page, expected);
    let after = tri!(fetch_all(&p.b, &p.ch).await, expected);
    Ok(Outcome::check(
        page.ids() == [id2] && after.ids() == [id2],
        expected,
        format!(
            "enqueued [{id1}, {id2}]; FetchWait {:?}; Fetch {:?}",
            page.ids(),
            after.ids()
        ),
    ))
}
