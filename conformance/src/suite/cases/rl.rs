//! RL: request rate limits (schema/README.md §9, wire.capnp
//! `Limits.rateLimitPerSecond`, `Error.retryAfterMs`).
//!
//! A case floods with `2 × announced + 20` requests sent at once with
//! [`Session::exchange`] (no retry). A limit of r requests/s allows at most
//! r in any one second (plus no more than one second's worth of burst), so
//! when the flood completes within one second some request must be refused.
//! Targets announcing more than `MAX_RATE` (200) requests/s are SKIPPED with the
//! reason: one client cannot exceed them reliably.

use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::def;
use super::mbx::{enqueue_frame, read_page};
use crate::suite::client::Reply;
use crate::suite::ctx::{expect_code, expect_error, CaseError, Ctx, Outcome, Session};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::{code, ErrorReply, PROTOCOL_VERSION as V};

/// Highest announced rate the suite tries to exceed.
const MAX_RATE: u16 = 200;

const CAP: Option<&str> = Some("mailbox/1");
const RATE: &str = "Rate limits (defaults; `Limits.rateLimitPerSecond` announces the first): 50 requests/s per identity, and 500 requests/s per source IP shared fairly between the identities active on that IP [...] Over a limit → `rateLimited` with `retryAfterMs` (≥ 1). (schema/README.md §9)";
const FAIR: &str = "500 requests/s per source IP **shared fairly** between the identities active on that IP (each of `n` gets `1/n` of the IP's rate), so one flooding identity cannot make the others behind a NAT `rateLimited`. (schema/README.md §9)";
const CREATE_LIMIT: &str = "`CreateChannel` has a separate, lower limit per creator (30/min, burst 10) and per IP (600/min): the lookup of an existing channel counts too. Over a limit → `rateLimited` with `retryAfterMs` (≥ 1). (schema/README.md §9)";
const RETRY: &str = "rateLimited: The caller exceeded a rate limit. `retryAfterMs` says when to retry. retryAfterMs: For `rateLimited` and `unavailable`: how long to wait before retrying, in ms. (wire.capnp)";
const REQUEST_CODE: &str = "requestCode: The message code of the request being answered. retryAfterMs: For `rateLimited` [...]: how long to wait before retrying, in ms. (wire.capnp Error)";
const ERROR_ONLY: &str = "Error: Negative reply to any request [...] (wire.capnp); `Enqueue` [...] acknowledged only after a durable commit (§9): a refused request stores nothing.";

/// Polls every future to completion, concurrently.
async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// The announced rate, or SKIPPED when it is too high to exceed.
fn rate(s: &Session) -> Result<u16, CaseError> {
    let r = s.hello.limits.rate_limit_per_second;
    if r > MAX_RATE {
        Err(CaseError::Skipped(format!(
            "the announced rateLimitPerSecond is {r}: more than the {MAX_RATE}/s one client can reliably exceed within a second"
        )))
    } else {
        Ok(r)
    }
}

/// What a flood observed.
struct Flood {
    replies: Vec<Reply>,
    took: Duration,
    n: usize,
}

impl Flood {
    fn limited(&self) -> Vec<ErrorReply> {
        self.replies
            .iter()
            .filter_map(|r| expect_error(r, &["rateLimited"]).ok())
            .collect()
    }
    fn served(&self, response: u8) -> usize {
        self.replies
            .iter()
            .filter(|r| expect_code(r, response).is_ok())
            .count()
    }
    /// SKIPPED when nothing was limited and the flood was too slow to prove
    /// anything.
    fn conclusive(&self) -> Result<(), CaseError> {
        if self.limited().is_empty() && self.took > Duration::from_secs(1) {
            Err(CaseError::Skipped(format!(
                "the flood of {} requests took {} ms: too slow to exceed a per-second limit",
                self.n,
                self.took.as_millis()
            )))
        } else {
            Ok(())
        }
    }
    fn describe(&self, response: u8) -> String {
        let limited = self.limited();
        format!(
            "{} requests in {} ms: {} served, {} rateLimited (retryAfterMs {:?})",
            self.n,
            self.took.as_millis(),
            self.served(response),
            limited.len(),
            limited
                .iter()
                .map(|e| e.retry_after_ms)
                .take(5)
                .collect::<Vec<_>>()
        )
    }
}

/// `frames` sent at once on `s`, without retry.
async fn flood(s: &Session, frames: &[Vec<u8>]) -> Flood {
    let t0 = Instant::now();
    let replies = join_all(frames.iter().map(|f| s.exchange(f)).collect()).await;
    Flood {
        took: t0.elapsed(),
        n: frames.len(),
        replies,
    }
}

fn list_frame() -> Vec<u8> {
    crate::suite::ctx::req::list_channels(V)
}

/// A flood of ListChannels from a fresh identity.
async fn list_flood(ctx: &mut Ctx) -> Result<(Session, Flood), CaseError> {
    let s = ctx.connect().await?;
    let r = rate(&s)?;
    let frames = vec![list_frame(); usize::from(r) * 2 + 20];
    let f = flood(&s, &frames).await;
    f.conclusive()?;
    Ok((s, f))
}

/// Waits until a ListChannels from `s` is served again (the target's
/// bucket has refilled), so later cases start unthrottled.
async fn settle(s: &Session) {
    let _ = s.request(&list_frame()).await;
}

async fn over_rate(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (s, f) = list_flood(ctx).await?;
    let r = s.hello.limits.rate_limit_per_second;
    let limited = f.limited();
    let expected = format!(
        "{} ListChannels at once (announced rate {r}/s): at least one Error(rateLimited) with retryAfterMs > 0, every other reply served",
        f.n
    );
    let others_ok = f.served(code::LIST_CHANNELS_RESPONSE) + limited.len() == f.n;
    let o = Outcome::check(
        !limited.is_empty() && limited.iter().all(|e| e.retry_after_ms > 0) && others_ok,
        expected,
        f.describe(code::LIST_CHANNELS_RESPONSE),
    );
    settle(&s).await;
    Ok(o)
}

async fn served_after_retry(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (s, f) = list_flood(ctx).await?;
    let expected = "after a refusal, waiting its retryAfterMs, the same identity on the same connection is served (one request, no retry)";
    if f.limited().is_empty() {
        return Ok(Outcome::fail(
            expected,
            format!(
                "no rateLimited: {}",
                f.describe(code::LIST_CHANNELS_RESPONSE)
            ),
        ));
    }
    // The largest retryAfterMs of a concurrent burst is no promise: a later
    // request of the burst may have been served with the token an earlier
    // refusal announced (§9). So probe one request at a time until one is
    // refused; that refusal's retryAfterMs is the promise under test. The
    // bucket is nearly empty after the flood, so a probe is refused within a
    // few tries unless the target refills faster than one round trip.
    const PROBES: usize = 20;
    let mut refusal = None;
    for _ in 0..PROBES {
        let reply = s.exchange(&list_frame()).await;
        if let Ok(e) = expect_error(&reply, &["rateLimited"]) {
            refusal = Some(e);
            break;
        }
        if let Err(e) = expect_code(&reply, code::LIST_CHANNELS_RESPONSE) {
            return Ok(Outcome::fail(expected, format!("a probe: {e}")));
        }
    }
    let Some(refusal) = refusal else {
        return Err(CaseError::Skipped(format!(
            "{PROBES} requests one at a time after the flood were all served: the target refills faster than one round trip, so no single refusal could be observed ({})",
            f.describe(code::LIST_CHANNELS_RESPONSE)
        )));
    };
    // 10 % + 20 ms of slack for timer granularity.
    let wait = u64::from(refusal.retry_after_ms) * 11 / 10 + 20;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let reply = s.exchange(&list_frame()).await;
    let o = match expect_code(&reply, code::LIST_CHANNELS_RESPONSE) {
        Ok(_) => Outcome::pass(
            expected,
            format!(
                "refused with retryAfterMs {}, served after {wait} ms",
                refusal.retry_after_ms
            ),
        ),
        Err(e) => Outcome::fail(
            expected,
            format!(
                "refused with retryAfterMs {}, then after {wait} ms: {e}",
                refusal.retry_after_ms
            ),
        ),
    };
    settle(&s).await;
    Ok(o)
}

async fn other_identity(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let other_ip: IpAddr = match ctx.target.addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => IpAddr::from([127, 0, 0, 2]),
        _ => {
            return Err(CaseError::Skipped(
                "the limit is per identity AND per IP: another identity must come from another IP, which the suite can only do for a target on 127.0.0.1 (source 127.0.0.2)".into(),
            ))
        }
    };
    let y = ctx.connect_from(other_ip).await?;
    let (s, f) = list_flood(ctx).await?;
    let expected = "while the flooding identity is limited, another identity from another IP (127.0.0.2) is served (one request, no retry)";
    let reply = y.exchange(&list_frame()).await;
    let limited = !f.limited().is_empty();
    let o = match expect_code(&reply, code::LIST_CHANNELS_RESPONSE) {
        Ok(_) => Outcome::check(
            limited,
            expected,
            format!(
                "served; flood: {}",
                f.describe(code::LIST_CHANNELS_RESPONSE)
            ),
        ),
        Err(e) => Outcome::fail(expected, e),
    };
    settle(&s).await;
    Ok(o)
}

async fn error_shape(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (s, f) = list_flood(ctx).await?;
    let expected = "each Error(rateLimited) names the request (requestCode 0x68) and a retryAfterMs in 1..=60000";
    let limited = f.limited();
    let bad: Vec<String> = limited
        .iter()
        .filter(|e| {
            e.request_code != code::LIST_CHANNELS || !(1..=60_000).contains(&e.retry_after_ms)
        })
        .map(|e| {
            format!(
                "requestCode 0x{:02x} retryAfterMs {}",
                e.request_code, e.retry_after_ms
            )
        })
        .collect();
    let o = Outcome::check(
        !limited.is_empty() && bad.is_empty(),
        expected,
        if bad.is_empty() {
            f.describe(code::LIST_CHANNELS_RESPONSE)
        } else {
            bad.join("; ")
        },
    );
    settle(&s).await;
    Ok(o)
}

async fn refused_not_stored(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let r = rate(&s)?;
    let seed = ctx.random32();
    let b = ctx.connect_as(seed).await?;
    let n = usize::from(r) * 2 + 20;
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut p = b"rl-probe-".to_vec();
            p.extend_from_slice(&(i as u32).to_le_bytes());
            enqueue_frame(V, &[], &b.client_id, &p, &[])
        })
        .collect();
    let f = flood(&s, &frames).await;
    f.conclusive()?;
    let acked = f.served(code::ENQUEUE_RESPONSE);
    let expected = format!(
        "of {n} legacy Enqueues sent at once, exactly the acknowledged ones are delivered (refused ones are not stored)"
    );
    settle(&s).await;
    // Fetch (and acknowledge) B's whole legacy queue.
    let mut delivered = 0usize;
    let mut ack = 0u64;
    for _ in 0..(n / 50 + 3) {
        let reply = b.request(&wire_fetch(ack)).await;
        let page = match read_page(&reply, code::FETCH_RESPONSE) {
            Ok(p) => p,
            Err(e) => return Ok(Outcome::fail(expected, format!("B's Fetch got {e}"))),
        };
        if page.msgs.is_empty() {
            break;
        }
        delivered += page.msgs.len();
        ack = page.msgs.iter().map(|m| m.id).max().unwrap_or(ack);
    }
    Ok(Outcome::check(
        delivered == acked && !f.limited().is_empty(),
        expected,
        format!(
            "{}; {delivered} delivered",
            f.describe(code::ENQUEUE_RESPONSE)
        ),
    ))
}

async fn same_ip_identity(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let (s, f) = list_flood(ctx).await?;
    let other = ctx.connect().await?;
    let expected = "while the flooding identity is limited, another identity from the SAME IP is served (one request, no retry)";
    let reply = other.exchange(&list_frame()).await;
    let limited = !f.limited().is_empty();
    let o = match expect_code(&reply, code::LIST_CHANNELS_RESPONSE) {
        Ok(_) => Outcome::check(
            limited,
            expected,
            format!(
                "served; flood: {}",
                f.describe(code::LIST_CHANNELS_RESPONSE)
            ),
        ),
        Err(e) => Outcome::fail(
            expected,
            format!("{e}; flood: {}", f.describe(code::LIST_CHANNELS_RESPONSE)),
        ),
    };
    settle(&s).await;
    settle(&other).await;
    Ok(o)
}

/// CreateChannel requests sent at once by one identity, each with a fresh
/// (valid) peer: fewer than the request rate, more than the default
/// creation burst.
const CREATE_FLOOD: usize = 40;

async fn create_limited(ctx: &mut Ctx) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let frames: Vec<Vec<u8>> = (0..CREATE_FLOOD)
        .map(|_| {
            let peer = distsoc_protocol::sign::SigningKey::from_seed(&ctx.random32()).public();
            super::mbx::create_frame(&peer)
        })
        .collect();
    let f = flood(&s, &frames).await;
    let limited = f.limited();
    let expected = format!(
        "{CREATE_FLOOD} CreateChannel with distinct peers at once from one identity (under its request rate): some are refused rateLimited with retryAfterMs > 0, the others served"
    );
    let served = f.served(code::CREATE_CHANNEL_RESPONSE);
    Ok(Outcome::check(
        !limited.is_empty()
            && limited.iter().all(|e| e.retry_after_ms > 0)
            && served + limited.len() == f.n,
        expected,
        f.describe(code::CREATE_CHANNEL_RESPONSE),
    ))
}

/// A legacy Fetch acknowledging through `ack`.
fn wire_fetch(ack: u64) -> Vec<u8> {
    crate::suite::ctx::req::fetch(V, None, ack)
}

/// The RL cases.
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Negative, Positive};
    use Level::{Must, Should};
    let r = Role::Anchor;
    vec![
        def(
            "RL-9-001",
            Must,
            Negative,
            r,
            CAP,
            "requests over the announced rate get Error(rateLimited) with retryAfterMs > 0",
            "schema/README.md §9",
            RATE,
        )
        .run(|ctx| Box::pin(over_rate(ctx))),
        def(
            "RL-9-002",
            Must,
            Positive,
            r,
            CAP,
            "after retryAfterMs the limited identity is served again on the same connection",
            "wire.capnp ErrorCode",
            RETRY,
        )
        .run(|ctx| Box::pin(served_after_retry(ctx))),
        def(
            "RL-9-003",
            Must,
            Positive,
            r,
            CAP,
            "another identity from another IP is served while one identity is limited",
            "schema/README.md §9",
            RATE,
        )
        .run(|ctx| Box::pin(other_identity(ctx))),
        def(
            "RL-9-004",
            Should,
            Negative,
            r,
            CAP,
            "Error(rateLimited) names the request and a sane retryAfterMs",
            "wire.capnp Error",
            REQUEST_CODE,
        )
        .run(|ctx| Box::pin(error_shape(ctx))),
        def(
            "RL-9-005",
            Should,
            Negative,
            r,
            CAP,
            "rate-limited Enqueues are not stored",
            "schema/README.md §9",
            ERROR_ONLY,
        )
        .run(|ctx| Box::pin(refused_not_stored(ctx))),
        def(
            "RL-9-200",
            Must,
            Positive,
            r,
            CAP,
            "another identity from the same IP is served while one identity is limited",
            "schema/README.md §9",
            FAIR,
        )
        .run(|ctx| Box::pin(same_ip_identity(ctx))),
        def(
            "RL-9-201",
            Should,
            Negative,
            r,
            CAP,
            "CreateChannel has its own, lower per-creator limit (rateLimited with retryAfterMs)",
            "schema/README.md §9",
            CREATE_LIMIT,
        )
        .run(|ctx| Box::pin(create_limited(ctx))),
    ]
}
