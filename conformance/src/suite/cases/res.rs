//! RES: resource exhaustion at the connection level (schema/README.md §1,
//! "Resource limits of a connection"): slow frames, frame deadlines and the
//! per-address connection cap.
//!
//! Each case is bounded to a few seconds. Cases that need a second source
//! address run only against a target on 127.0.0.1 (sources 127.0.0.3 and
//! 127.0.0.4), like RL-9-003.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::def;
use crate::suite::client::{connect_from, read_reply, ClientAuth, Closed, ConnectOptions, Reply};
use crate::suite::ctx::{expect_code, expect_error, CaseError, Ctx, HelloSpec, Outcome, Session};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::code;

const SLOW: &str = "A receiver charges a frame's memory as its bytes arrive, never for bytes a segment table only declares, so that slow senders cannot hold what other connections need; requests on other connections keep being served.";
const DEADLINE: &str = "A frame must arrive completely within 5 s + n / 32768 s of its stream's first byte (n = the declared frame length); a receiver SHOULD abandon a stream whose frame is later (STOP_SENDING, and RESET_STREAM of its reply direction), leaving the connection open.";
const PER_IP: &str = "A receiver MAY cap the connections from one IP address; a connection over the cap is closed right after the QUIC handshake with application code 0x6 (or refused in the handshake), and other addresses are unaffected.";

/// Attackers in RES-1-101.
const SLOW_STREAMS: usize = 4;
/// Probe requests measured in RES-1-101, and the bound on each.
const PROBES: usize = 10;
const PROMPT: Duration = Duration::from_secs(1);
/// The largest deadline RES-1-102 waits for: 5 s + 520 B / 32 KiB/s, plus
/// generous slack.
const DEADLINE_BOUND: Duration = Duration::from_millis(8000);
/// Connections RES-1-103 opens from one address.
const FLOOD: usize = 40;

/// A one-segment frame header of `code` declaring `words` words of body.
fn declared_header(code: u8, words: u32) -> Vec<u8> {
    let mut h = vec![code];
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&words.to_le_bytes());
    h
}

/// A second loopback source address, or SKIPPED.
fn loopback_source(ctx: &Ctx, last: u8) -> Result<IpAddr, CaseError> {
    match ctx.target.addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Ok(IpAddr::from([127, 0, 0, last])),
        _ => Err(CaseError::Skipped(
            "needs another source address, which the suite can only use for a target on 127.0.0.1"
                .into(),
        )),
    }
}

/// One probe request on `s`: how long it took to be answered, or why it
/// failed. `rateLimited` counts as an answer (an anchor's per-IP limit may
/// still be recovering from earlier cases); waiting, `unavailable` or a
/// lost stream do not.
async fn timed_probe(ctx: &mut Ctx, s: &Session) -> Result<Duration, String> {
    let probe = ctx.probe();
    let started = Instant::now();
    let reply = s.exchange(&probe.frame).await;
    let took = started.elapsed();
    match expect_code(&reply, probe.response) {
        Ok(_) => Ok(took),
        Err(_) if expect_error(&reply, &["rateLimited"]).is_ok() => Ok(took),
        Err(e) => Err(format!("{} got {e}", probe.name)),
    }
}

async fn slow_frames_do_not_starve(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    // InitialMapSync (0x02) has the largest cap, 16 MiB: 8 bytes of
    // segment table + 2 MiB - 1 words.
    let words = (16 * 1024 * 1024 - 8) / 8;
    let mut slow = Vec::new();
    for _ in 0..SLOW_STREAMS {
        let s = ctx.connect().await?;
        let (mut send, recv) = s.conn.open_bi().await?;
        let _ = send
            .write_all(&declared_header(code::INITIAL_MAP_SYNC, words))
            .await;
        let _ = send.write_all(&[0]).await;
        slow.push((s, send, recv));
    }
    let good = ctx.connect().await?;
    let expected = format!(
        "while {SLOW_STREAMS} connections each trickle a frame declaring 16 MiB, {PROBES} requests on another connection are each answered within {PROMPT:?}"
    );
    let mut took = Vec::new();
    let mut outcome = None;
    for _ in 0..PROBES {
        // Keep the slow streams alive (one byte each per probe).
        for (_, send, _) in &mut slow {
            let _ = send.write_all(&[0]).await;
        }
        // Paced, to stay under request rate limits.
        tokio::time::sleep(Duration::from_millis(100)).await;
        match timed_probe(ctx, &good).await {
            Ok(t) if t <= PROMPT => took.push(t),
            Ok(t) => {
                outcome = Some(Outcome::fail(&expected, format!("a request took {t:?}")));
                break;
            }
            Err(e) => {
                outcome = Some(Outcome::fail(&expected, e));
                break;
            }
        }
    }
    drop(slow);
    Ok(outcome.unwrap_or_else(|| {
        let max = took.iter().max().copied().unwrap_or_default();
        Outcome::pass(
            &expected,
            format!("{} requests, slowest {max:?}", took.len()),
        )
    }))
}

async fn slow_frame_is_cut(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let probe = ctx.probe();
    // The probe's code with a 64-word body declared (520 bytes in all): its
    // deadline is 5 s + 16 ms.
    let (mut send, mut recv) = s.conn.open_bi().await?;
    let started = Instant::now();
    let _ = send.write_all(&declared_header(probe.code, 64)).await;
    let expected = format!(
        "a {} frame trickled one byte per 500 ms is abandoned (STOP_SENDING, a reset or an Error reply) within {DEADLINE_BOUND:?}, and the connection stays open",
        probe.name
    );
    let mut sent = 0;
    let cut = loop {
        if started.elapsed() > DEADLINE_BOUND {
            break None;
        }
        let r = read_reply(&mut recv, 1 << 16, Duration::from_millis(500)).await;
        if r != Reply::Timeout {
            break Some(format!("{r} after {:?}", started.elapsed()));
        }
        if sent < 64 * 8 - 1 {
            if let Err(quinn::WriteError::Stopped(_)) = send.write_all(&[0]).await {
                break Some(format!("STOP_SENDING after {:?}", started.elapsed()));
            }
            sent += 1;
        }
    };
    let outcome = match cut {
        Some(how) => Outcome::pass(&expected, how),
        None => Outcome::fail(&expected, format!("still open after {DEADLINE_BOUND:?}")),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

async fn per_ip_cap(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let flood_ip = loopback_source(ctx, 4)?;
    let other_ip = loopback_source(ctx, 3)?;
    let expected = format!(
        "of {FLOOD} connections from {flood_ip}, each completes Hello or is closed with code 0x6 (or refused in the handshake); then a connection from {other_ip} is served"
    );
    let mut held = Vec::new();
    let (mut served, mut capped) = (0, 0);
    for _ in 0..FLOOD {
        let seed = ctx.random32();
        let opts = ConnectOptions {
            auth: ClientAuth::Key(seed),
            ..ctx.options()
        };
        let conn = match connect_from(ctx.target.addr, &opts, Some(flood_ip)).await {
            Ok(conn) => conn,
            Err(_) => {
                capped += 1;
                continue;
            }
        };
        let reply = conn
            .exchange(&HelloSpec::default().frame(), 1 << 16, ctx.timeouts.reply)
            .await;
        if expect_code(&reply, code::HELLO_RESPONSE).is_ok() {
            served += 1;
            held.push(conn);
            continue;
        }
        match conn.closed_within(ctx.timeouts.reply).await {
            Some(Closed::Application(0x6, _)) => capped += 1,
            other => {
                let how = other.map_or_else(|| reply.to_string(), |c| c.to_string());
                return Ok(Outcome::fail(
                    expected,
                    format!("after {served} served, one got {how}"),
                ));
            }
        }
    }
    let other = ctx.connect_from(other_ip).await;
    drop(held);
    let other = match other {
        Ok(s) => s,
        Err(e) => return Ok(Outcome::fail(expected, format!("{other_ip}: {e}"))),
    };
    let actual = format!("{served} served, {capped} refused; {other_ip} connected");
    Ok(Outcome::pass(expected, actual).and_usable(ctx.still_usable(&other).await))
}

/// The RES cases.
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Limit, Negative};
    use Level::{Must, Should};
    vec![
        def(
            "RES-1-101",
            Must,
            Negative,
            Role::Any,
            None,
            "frames trickled on other connections do not delay requests",
            "schema/README.md §1",
            SLOW,
        )
        .run(|ctx| Box::pin(slow_frames_do_not_starve(ctx))),
        def(
            "RES-1-102",
            Should,
            Limit,
            Role::Any,
            None,
            "a frame that misses its deadline is abandoned and the connection stays open",
            "schema/README.md §1",
            DEADLINE,
        )
        .run(|ctx| Box::pin(slow_frame_is_cut(ctx))),
        def(
            "RES-1-103",
            Must,
            Limit,
            Role::Any,
            None,
            "connections over a per-address cap are closed with 0x6; other addresses are served",
            "schema/README.md §1",
            PER_IP,
        )
        .run(|ctx| Box::pin(per_ip_cap(ctx))),
    ]
}
