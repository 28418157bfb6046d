//! MBX cases of rotating DM ids (schema/README.md §9.1): channels whose
//! members are ephemeral keys derived from a chain seed, each on a new
//! connection the anchor has never seen. To the anchor such a key is just an
//! identity (§9: "the caller is the QUIC-authenticated NodeId (may be an
//! ephemeral key)"); these cases make that explicit with the §9.1
//! derivations, so an anchor that admits only known or checked-in ids, or
//! that links a thread's successive channels, fails here by name.

use distsoc_protocol::dm_rotation::ChainSeed;

use super::{
    bytes, create_frame, fetch_all, fetch_frame, list, read_created, refused, send, F, NONMEMBER,
};
use crate::suite::ctx::{CaseError, Ctx, Outcome, Session};

/// One step of a rotated thread: the sender S(n) and the reader R(n) of a
/// chain seed, each on its own new connection, and the channel S(n) made.
struct Step {
    send: Session,
    recv: Session,
    channel: Vec<u8>,
}

async fn step(ctx: &mut Ctx, seed: &ChainSeed) -> Result<Step, CaseError> {
    let send = ctx.connect_as(*seed.send_seed()).await?;
    let recv = ctx.connect_as(*seed.recv_seed()).await?;
    let reply = send.request(&create_frame(&recv.client_id)).await;
    let c = read_created(&reply).map_err(|e| {
        CaseError::Setup(format!(
            "CreateChannel by a fresh ephemeral sender S(n) to R(n) got {e}"
        ))
    })?;
    Ok(Step {
        send,
        recv,
        channel: c.channel,
    })
}

/// A chain seed from the run's random source (a new thread per case).
fn chain(ctx: &mut Ctx) -> ChainSeed {
    ChainSeed::from_bytes(ctx.random32())
}

/// One rotated step, end to end: S(n) creates the channel with R(n) and
/// enqueues; R(n) lists the channel with S(n) as its peer and fetches the
/// payload intact.
pub(super) async fn rotated_step(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let seed = chain(ctx);
    let s = step(ctx, &seed).await?;
    let payload = bytes(ctx, 200);
    let expected = "S(n)'s Enqueue to R(n) is acknowledged; R(n) lists the channel with peer S(n) and 1 queued, and fetches the payload byte-identical";
    tri!(
        send(&s.send, &s.channel, &s.recv.client_id, &payload).await,
        expected
    );
    let listed = tri!(list(&s.recv).await, expected);
    let row = listed.channels.iter().find(|c| c.channel == s.channel);
    let page = tri!(fetch_all(&s.recv, &s.channel).await, expected);
    let ok = row.is_some_and(|r| r.peer == s.send.client_id && r.queued == 1)
        && page.has_payload(&payload) == 1;
    Ok(Outcome::check(
        ok,
        expected,
        format!(
            "listed: {}; fetched {} message(s), {} with the payload",
            row.map_or("not listed".into(), |r| format!(
                "peer {}, queued {}",
                if r.peer == s.send.client_id {
                    "S(n)"
                } else {
                    "another id"
                },
                r.queued
            )),
            page.msgs.len(),
            page.has_payload(&payload)
        ),
    ))
}

/// Successive steps of one thread meet nothing in common at the anchor:
/// step n+1's channel has another id and is not listed to step n's keys.
pub(super) async fn steps_unlinked(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let seed = chain(ctx);
    let a = step(ctx, &seed).await?;
    let b = step(ctx, &seed.next()).await?;
    let payload = bytes(ctx, 64);
    let expected = "steps n and n+1 of a chain get different channel ids, and neither S(n) nor R(n) lists step n+1's channel";
    tri!(
        send(&b.send, &b.channel, &b.recv.client_id, &payload).await,
        expected
    );
    let by_sender = tri!(list(&a.send).await, expected);
    let by_reader = tri!(list(&a.recv).await, expected);
    let leaked = by_sender
        .channels
        .iter()
        .chain(&by_reader.channels)
        .any(|c| c.channel == b.channel);
    Ok(Outcome::check(
        a.channel != b.channel && !leaked,
        expected,
        format!(
            "channel ids {}; step n+1's channel {} to step n's keys",
            if a.channel == b.channel {
                "EQUAL"
            } else {
                "differ"
            },
            if leaked { "IS listed" } else { "not listed" }
        ),
    ))
}

/// A key of step n is a stranger to step n+1: R(n)'s Fetch of step n+1's
/// channel is refused like any non-member's and deletes nothing.
pub(super) async fn previous_key_refused(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let seed = chain(ctx);
    let a = step(ctx, &seed).await?;
    let b = step(ctx, &seed.next()).await?;
    let payload = bytes(ctx, 64);
    tri!(
        send(&b.send, &b.channel, &b.recv.client_id, &payload).await,
        "S(n+1)'s Enqueue to R(n+1)"
    );
    let reply = a
        .recv
        .request(&fetch_frame(F {
            channel: &b.channel,
            ack: u64::MAX,
            ..F::default()
        }))
        .await;
    let mut o = refused(
        ctx,
        &a.recv,
        &reply,
        &NONMEMBER,
        "R(n)'s Fetch (ackThrough = 2^64-1) of step n+1's channel",
    )
    .await;
    o.expected.push_str("; R(n+1) still gets the message");
    match fetch_all(&b.recv, &b.channel).await {
        Ok(page) if page.has_payload(&payload) == 1 => o.actual.push_str("; R(n+1) gets it"),
        Ok(page) => {
            o.passed = false;
            o.actual
                .push_str(&format!("; R(n+1) got {} message(s)", page.msgs.len()));
        }
        Err(e) => {
            o.passed = false;
            o.actual.push_str(&format!("; R(n+1)'s Fetch: {e}"));
        }
    }
    Ok(o)
}
