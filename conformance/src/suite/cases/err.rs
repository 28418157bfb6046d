//! ERR: the shape of Error replies and the connection after errors
//! (schema/README.md §1, §11, wire.capnp `Error`).

use std::time::Duration;

use super::def;
use crate::suite::client::{self, Reply};
use crate::suite::ctx::{expect_code, expect_error, CaseError, Ctx, Outcome, Session};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::{self, single, sp, ErrorReply};

const USABLE: &str = "An error on one stream never closes the connection: malformed, oversize and unknown messages get an `Error` on their stream and the connection stays usable.";
const SHAPE: &str = "Error: Negative reply to any request, or to a push sent on a bidirectional stream. The stream ends after it; the connection stays usable. (wire.capnp)";

/// A malformed frame under the probe code (struct data past the end).
fn malformed(ctx: &mut Ctx) -> (Vec<u8>, u8) {
    let p = ctx.probe();
    (single(p.code, &[sp(0, 2, 0), 2]), p.code)
}

/// One Error reply to a malformed frame on a fresh session.
async fn one_error(ctx: &mut Ctx) -> Result<(Session, Reply, u8), CaseError> {
    let (bytes, code) = malformed(ctx);
    let s = ctx.connect().await?;
    let reply = s.exchange(&bytes).await;
    Ok((s, reply, code))
}

async fn check_error(
    ctx: &mut Ctx,
    expected: &str,
    f: impl Fn(&ErrorReply, u8, u16) -> Result<String, String>,
) -> Result<Outcome, CaseError> {
    let (s, reply, code) = one_error(ctx).await?;
    Ok(match expect_error(&reply, &wire::ERROR_CODES) {
        Ok(e) => match f(&e, code, s.hello.version) {
            Ok(actual) => Outcome::pass(expected, actual),
            Err(actual) => Outcome::fail(expected, actual),
        },
        Err(e) => Outcome::fail(expected, e),
    })
}

const UNKNOWN_CODE_ECHO: &str = "Receivers must, before allocating the body: reject an unknown code with `unknownMessage`, whose `requestCode` is the code byte as received (an empty stream, which has no code byte, gets `malformed` with `requestCode` 0xFF).";

/// An unknown code byte (`code`) in front of the probe's valid message:
/// `Error(unknownMessage)` whose `requestCode` echoes that byte.
async fn unknown_code_echoed(ctx: &mut Ctx, code: u8) -> Result<Outcome, CaseError> {
    let mut bytes = ctx.probe().frame;
    bytes[0] = code;
    let s = ctx.connect().await?;
    let reply = s.exchange(&bytes).await;
    let expected = format!("Error(unknownMessage) with requestCode 0x{code:02x}");
    let outcome = match expect_error(&reply, &["unknownMessage"]) {
        Ok(e) => Outcome::check(e.request_code == code, &expected, e.to_string()),
        Err(got) => Outcome::fail(&expected, got),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

/// The ERR cases.
#[allow(clippy::too_many_lines)]
pub(crate) fn cases() -> Vec<Case> {
    use Kind::Negative;
    use Level::{Must, Should};
    vec![
        def("ERR-11-001", Must, Negative, Role::Any, None, "Error.version is the selected version", "wire.capnp Error", "version: Protocol version of this message. [...] All later messages on the connection use it (HelloResponse.version).")
            .run(|ctx| Box::pin(check_error(ctx, "Error.version = the selected version", |e, _, v| {
                if e.version == v { Ok(format!("version {}", e.version)) } else { Err(format!("version {} (selected {v})", e.version)) }
            }))),
        def("ERR-11-002", Should, Negative, Role::Any, None, "Error.code is an ErrorCode enumerant of the schema", "schema/README.md §11", "See `ErrorCode` in `wire.capnp` [...] Numbering is part of the wire format.")
            .run(|ctx| Box::pin(async move {
                let (_s, reply, _) = one_error(ctx).await?;
                Ok(match reply {
                    Reply::Finished(ref b) => match crate::suite::frame::RawFrame::parse(b).and_then(|f| f.error()) {
                        Ok(e) => Outcome::check(usize::from(e.code) < wire::ERROR_CODES.len(), "a code in 0..=14", format!("code {}", e.code)),
                        Err(e) => Outcome::fail("an Error frame", e),
                    },
                    other => Outcome::fail("an Error frame", other.to_string()),
                })
            })),
        def("ERR-11-003", Should, Negative, Role::Any, None, "Error.requestCode is the code of the refused request", "wire.capnp Error", "requestCode: The message code of the request being answered: for an unknown code, the code byte as received; 0xFF only when no code byte arrived (an empty stream).")
            .run(|ctx| Box::pin(check_error(ctx, "requestCode = the request's code", |e, code, _| {
                if e.request_code == code { Ok(format!("requestCode 0x{:02x}", e.request_code)) } else { Err(format!("requestCode 0x{:02x}, request 0x{code:02x}", e.request_code)) }
            }))),
        def("ERR-11-004", Should, Negative, Role::Any, None, "Error.requestCode is 0xFF for an empty stream", "wire.capnp Error", "requestCode: The message code of the request being answered: for an unknown code, the code byte as received; 0xFF only when no code byte arrived (an empty stream).")
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let reply = s.exchange(&[]).await;
                let outcome = match expect_error(&reply, &["malformed"]) {
                    Ok(e) => Outcome::check(e.request_code == 0xff, "Error(malformed) with requestCode 0xFF", format!("requestCode 0x{:02x}", e.request_code)),
                    Err(e) => Outcome::fail("Error(malformed) with requestCode 0xFF", e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("ERR-11-005", Must, Negative, Role::Any, None, "Error.message is at most 1024 bytes", "wire.capnp Error", "message: Human-readable detail for logs. At most 1024 bytes. Never parsed.")
            .run(|ctx| Box::pin(check_error(ctx, "message ≤ 1024 bytes", |e, _, _| {
                if e.message_len <= 1024 { Ok(format!("{} bytes", e.message_len)) } else { Err(format!("{} bytes", e.message_len)) }
            }))),
        def("ERR-11-006", Should, Negative, Role::Any, None, "Error.retryAfterMs is 0 for a malformed frame", "wire.capnp Error", "retryAfterMs: For `rateLimited` and `unavailable`: how long to wait before retrying, in ms. 0 otherwise.")
            .run(|ctx| Box::pin(check_error(ctx, "retryAfterMs = 0", |e, _, _| {
                if e.retry_after_ms == 0 { Ok("0".into()) } else { Err(format!("{}", e.retry_after_ms)) }
            }))),
        def("ERR-11-007", Should, Negative, Role::Any, None, "Error.minVersion/maxVersion are 0 unless unsupportedVersion", "wire.capnp Error", "minVersion / maxVersion: For `unsupportedVersion`: the lowest / highest version the receiver speaks. 0 otherwise.")
            .run(|ctx| Box::pin(check_error(ctx, "minVersion = maxVersion = 0", |e, _, _| {
                if (e.min_version, e.max_version) == (0, 0) { Ok("0, 0".into()) } else { Err(format!("{}, {}", e.min_version, e.max_version)) }
            }))),
        def("ERR-1-008", Must, Negative, Role::Any, None, "ten bad streams in a row, then the connection still serves", "schema/README.md §1", USABLE)
            .run(|ctx| Box::pin(async move {
                let (bytes, _) = malformed(ctx);
                let s = ctx.connect().await?;
                let mut bad = 0;
                for i in 0..10u8 {
                    let b = match i % 3 { 0 => bytes.clone(), 1 => vec![0x80], _ => Vec::new() };
                    if expect_error(&s.exchange(&b).await, &wire::ERROR_CODES).is_err() {
                        bad += 1;
                    }
                }
                let outcome = Outcome::check(bad == 0, "an Error on each of 10 bad streams", format!("{} of 10 answered with an Error", 10 - bad));
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("ERR-1-009", Must, Negative, Role::Any, None, "two concurrent bad streams do not affect a concurrent good one", "schema/README.md §1", USABLE)
            .run(|ctx| Box::pin(async move {
                let (bytes, _) = malformed(ctx);
                let p = ctx.probe();
                let s = ctx.connect().await?;
                let (a, b, good) = tokio::join!(s.exchange(&bytes), s.exchange(&[0x80]), s.request(&p.frame));
                let errors_ok = expect_error(&a, &["malformed"]).is_ok() && expect_error(&b, &["unknownMessage"]).is_ok();
                let good_ok = expect_code(&good, p.response);
                let ok = errors_ok && good_ok.is_ok();
                Ok(Outcome::check(ok, format!("Error(malformed), Error(unknownMessage), and {} served", p.name), format!("{a}; {b}; good: {}", good_ok.map_or_else(|e| e, |_| "served".into()))))
            })),
        def("ERR-1-010", Must, Negative, Role::Any, None, "sixteen concurrent bad streams each get an Error; the connection still serves", "schema/README.md §1", USABLE)
            .run(|ctx| Box::pin(async move {
                let (bytes, _) = malformed(ctx);
                let s = ctx.connect().await?;
                let frames: Vec<Vec<u8>> = (0..16u8)
                    .map(|i| match i % 4 { 0 => bytes.clone(), 1 => vec![0x80], 2 => Vec::new(), _ => wire::header(0x40, 1, &[u32::MAX, u32::MAX], true) })
                    .collect();
                let replies = join_all(frames.iter().map(|f| s.exchange(f)).collect()).await;
                let mut bad = Vec::new();
                for r in &replies {
                    if expect_error(r, &wire::ERROR_CODES).is_err() {
                        bad.push(r.to_string());
                    }
                }
                let outcome = Outcome::check(bad.is_empty(), "an Error on each of 16 concurrent bad streams", if bad.is_empty() { "16 Errors".to_string() } else { bad.join("; ") });
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("ERR-1-011", Must, Negative, Role::Any, None, "a request abandoned mid-frame (stream reset) does not affect the connection", "schema/README.md §1", USABLE)
            .run(|ctx| Box::pin(async move {
                let p = ctx.probe();
                let s = ctx.connect().await?;
                let (mut send, _recv) = s.conn.open_bi().await?;
                client::write_all_on(&mut send, &p.frame[..p.frame.len() / 2], false, s.conn.number()).await.map_err(CaseError::Setup)?;
                let _ = send.reset(7u32.into());
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Outcome::pass("nothing", "stream reset sent").and_usable(ctx.still_usable(&s).await))
            })),
        def("ERR-1-012", Must, Negative, Role::Any, None, "a client that stops reading its reply does not affect the connection", "schema/README.md §1", USABLE)
            .run(|ctx| Box::pin(async move {
                let p = ctx.probe();
                let s = ctx.connect().await?;
                let (mut send, mut recv) = s.conn.open_bi().await?;
                let _ = recv.stop(9u32.into());
                client::write_all_on(&mut send, &p.frame, true, s.conn.number()).await.map_err(CaseError::Setup)?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Outcome::pass("nothing", "STOP_SENDING sent").and_usable(ctx.still_usable(&s).await))
            })),
        def("ERR-1-013", Must, Negative, Role::Any, None, "an Error reply is one frame and the stream ends after it", "wire.capnp Error", SHAPE)
            .run(|ctx| Box::pin(async move {
                let (_s, reply, _) = one_error(ctx).await?;
                Ok(match expect_error(&reply, &wire::ERROR_CODES) {
                    Ok(e) => Outcome::pass("exactly one Error frame, then FIN", e.to_string()),
                    Err(e) => Outcome::fail("exactly one Error frame, then FIN", e),
                })
            })),
        def("ERR-2-600", Must, Negative, Role::Any, None, "an unknown code 0x07 gets Error(unknownMessage) whose requestCode is 0x07", "schema/README.md §2", UNKNOWN_CODE_ECHO)
            .run(|ctx| Box::pin(unknown_code_echoed(ctx, 0x07))),
        def("ERR-2-601", Must, Negative, Role::Any, None, "an unknown code 0xC3 gets Error(unknownMessage) whose requestCode is 0xC3", "schema/README.md §2", UNKNOWN_CODE_ECHO)
            .run(|ctx| Box::pin(unknown_code_echoed(ctx, 0xc3))),
    ]
}

/// A minimal join_all (no extra dependency).
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
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
