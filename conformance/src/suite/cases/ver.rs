//! VER: version negotiation and message versions (schema/README.md §1, §3).

use super::def;
// The one implementation of "the highest version in both ranges"
// (schema/README.md §1), shared with the runtime.
use crate::suite::client::Reply;
use crate::suite::ctx::{
    expect_code, expect_error, reply_frame, CaseError, Ctx, HelloInfo, HelloSpec, Outcome,
};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::{self, code};
use distsoc_protocol::conn::select_version;

const NEGOTIATE: &str = "the responder answers `HelloResponse` with the selected version (the highest version in both ranges), or — if the ranges do not overlap — `Error(unsupportedVersion)` carrying its own range, then closes the connection.";
const MSG_VERSION: &str = "`version` in every top-level message is the protocol version the sender speaks for it (currently **2**). A receiver answers a version outside its range with `Error(unsupportedVersion)` (with its `minVersion`/`maxVersion`) before looking at the rest of the message.";
const MINMAX: &str = "maxVersion: Highest protocol version the sender speaks. Must be >= minVersion (wire.capnp Hello).";
const ERR_VERSION: &str = "Error.version: For `unsupportedVersion` replies it is the receiver's maximum version (wire.capnp).";
const EMPTY_RANGE: &str = "A `Hello` with `minVersion > maxVersion` (breaks the schema rule \"must be >= minVersion\"): `Error(malformed)`, `requestCode` 0x00; close with `protocolViolation` (0x2). (schema/README.md §1.3)";
const LATER: &str = "HelloResponse.version: The selected protocol version [...] All later messages on the connection use it (wire.capnp).";

/// The target's declared range (from the discovery Hello exchange).
fn range(ctx: &Ctx) -> (u16, u16) {
    ctx.info
        .versions
        .unwrap_or((wire::PROTOCOL_VERSION, wire::PROTOCOL_VERSION))
}

/// Hello with `[min, max]` (version = max).
fn hello(min: u16, max: u16) -> Vec<u8> {
    HelloSpec {
        version: max,
        min_version: min,
        max_version: max,
        ..HelloSpec::default()
    }
    .frame()
}

/// Sends a Hello and returns the reply and the connection.
async fn send_hello(
    ctx: &mut Ctx,
    bytes: &[u8],
) -> Result<(crate::suite::client::Conn, Reply), CaseError> {
    let (conn, _) = ctx.connect_pinned().await?;
    let reply = conn.exchange(bytes, 1 << 20, ctx.timeouts.reply).await;
    Ok((conn, reply))
}

/// Hello `[min, max]` must select `want`.
async fn selects(ctx: &mut Ctx, min: u16, max: u16, want: u16) -> Result<Outcome, CaseError> {
    let (_conn, reply) = send_hello(ctx, &hello(min, max)).await?;
    let expected = format!("HelloResponse selecting version {want}");
    Ok(
        match expect_code(&reply, code::HELLO_RESPONSE).and_then(|f| HelloInfo::read(&f)) {
            Ok(h) => Outcome::check(
                h.version == want,
                expected,
                format!("HelloResponse selecting version {}", h.version),
            ),
            Err(e) => Outcome::fail(expected, e),
        },
    )
}

/// What a disjoint Hello range is checked for.
#[derive(Clone, Copy)]
enum Disjoint {
    /// Error(unsupportedVersion).
    Error,
    /// … carrying the responder's range.
    Range,
    /// … then the connection closes.
    Close,
}

async fn disjoint(ctx: &mut Ctx, above: bool, check: Disjoint) -> Result<Outcome, CaseError> {
    let (tmin, tmax) = range(ctx);
    let (min, max) = if above {
        if tmax == u16::MAX {
            return Ok(Outcome::pass(
                "a range above the target's",
                "the target speaks up to 65535: nothing is above",
            ));
        }
        (tmax + 1, tmax.saturating_add(7))
    } else {
        if tmin == 0 {
            return Ok(Outcome::pass(
                "a range below the target's",
                "the target speaks from version 0: nothing is below",
            ));
        }
        (
            tmin.saturating_sub(7).max(if tmin > 1 { 1 } else { 0 }),
            tmin - 1,
        )
    };
    let (conn, reply) = send_hello(ctx, &hello(min, max)).await?;
    let expected = format!("Hello [{min}, {max}] against [{tmin}, {tmax}]: ");
    Ok(match check {
        Disjoint::Error => match expect_error(&reply, &["unsupportedVersion"]) {
            Ok(e) => Outcome::pass(expected + "Error(unsupportedVersion)", e.to_string()),
            Err(e) => Outcome::fail(expected + "Error(unsupportedVersion)", e),
        },
        Disjoint::Range => match expect_error(&reply, &["unsupportedVersion"]) {
            Ok(e) => Outcome::check(
                (e.min_version, e.max_version) == (tmin, tmax),
                format!(
                    "{expected}Error(unsupportedVersion) with minVersion {tmin}, maxVersion {tmax}"
                ),
                format!("minVersion {}, maxVersion {}", e.min_version, e.max_version),
            ),
            Err(e) => Outcome::fail(
                expected + "Error(unsupportedVersion) with the target's range",
                e,
            ),
        },
        Disjoint::Close => {
            let closed = conn.closed_within(ctx.timeouts.close).await;
            let expected = format!("{expected}the connection is closed after the Error");
            match closed {
                Some(how) => Outcome::pass(expected, how.to_string()),
                None => Outcome::fail(
                    expected,
                    format!("still open after {:?}", ctx.timeouts.close),
                ),
            }
        }
    })
}

/// The probe request with its version replaced by `version`.
fn probe_with_version(ctx: &mut Ctx, version: u16) -> (Vec<u8>, &'static str) {
    let probe = ctx.probe();
    let mut bytes = probe.frame;
    // version is the first 16 bits of the root struct's data section: the
    // first body word after the root pointer (single segment, table 8 bytes).
    if bytes.len() >= 1 + 8 + 8 + 2 {
        bytes[17..19].copy_from_slice(&version.to_le_bytes());
    }
    (bytes, probe.name)
}

async fn request_version(
    ctx: &mut Ctx,
    version: u16,
    check_range: bool,
) -> Result<Outcome, CaseError> {
    let (tmin, tmax) = range(ctx);
    if (tmin..=tmax).contains(&version) {
        return Ok(Outcome::pass(
            format!("version {version} outside the target's range"),
            "inside the target's range: not applicable",
        ));
    }
    let (bytes, name) = probe_with_version(ctx, version);
    let s = ctx.connect().await?;
    let reply = s.request(&bytes).await;
    let expected = format!("{name} with version {version}: Error(unsupportedVersion)");
    let outcome = match expect_error(&reply, &["unsupportedVersion"]) {
        Ok(e) if check_range => Outcome::check(
            (e.min_version, e.max_version) == (tmin, tmax),
            format!("{expected} with minVersion {tmin}, maxVersion {tmax}"),
            format!("minVersion {}, maxVersion {}", e.min_version, e.max_version),
        ),
        Ok(e) => Outcome::pass(expected, e.to_string()),
        Err(e) => Outcome::fail(expected, e),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

/// The VER cases.
#[allow(clippy::too_many_lines)]
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Limit, Negative, Positive};
    use Level::Must;
    vec![
        def("VER-1-001", Must, Positive, Role::Any, None, "Hello [2, 2] selects version 2", "schema/README.md §1", NEGOTIATE)
            .run(|ctx| Box::pin(async move { selects(ctx, 2, 2, 2).await })),
        def("VER-1-002", Must, Positive, Role::Any, None, "overlapping Hello [1, 9] selects the highest common version", "schema/README.md §1", NEGOTIATE)
            .run(|ctx| Box::pin(async move {
                let (tmin, tmax) = range(ctx);
                // A target whose range starts above 9 is expected to fail here.
                let want = select_version(&(tmin..=tmax), 1, 9).unwrap_or(tmax.min(9));
                selects(ctx, 1, 9, want).await
            })),
        def("VER-1-003", Must, Limit, Role::Any, None, "Hello [0, 65535] selects the target's maximum", "schema/README.md §1", NEGOTIATE)
            .run(|ctx| Box::pin(async move {
                let (tmin, tmax) = range(ctx);
                let want = select_version(&(tmin..=tmax), 0, u16::MAX).unwrap_or(tmax);
                selects(ctx, 0, u16::MAX, want).await
            })),
        def("VER-1-004", Must, Negative, Role::Any, None, "a Hello range above the target's gets Error(unsupportedVersion)", "schema/README.md §1", NEGOTIATE)
            .run(|ctx| Box::pin(async move { disjoint(ctx, true, Disjoint::Error).await })),
        def("VER-1-005", Must, Negative, Role::Any, None, "Error(unsupportedVersion) for a disjoint Hello carries the target's range", "schema/README.md §1", NEGOTIATE)
            .run(|ctx| Box::pin(async move { disjoint(ctx, true, Disjoint::Range).await })),
        def("VER-1-006", Must, Negative, Role::Any, None, "the connection is closed after a disjoint Hello (range above)", "schema/README.md §1", NEGOTIATE)
            .run(|ctx| Box::pin(async move { disjoint(ctx, true, Disjoint::Close).await })),
        def("VER-1-007", Must, Negative, Role::Any, None, "a Hello range below the target's gets Error(unsupportedVersion)", "schema/README.md §1", NEGOTIATE)
            .run(|ctx| Box::pin(async move { disjoint(ctx, false, Disjoint::Error).await })),
        def("VER-1-008", Must, Negative, Role::Any, None, "the connection is closed after a disjoint Hello (range below)", "schema/README.md §1", NEGOTIATE)
            .run(|ctx| Box::pin(async move { disjoint(ctx, false, Disjoint::Close).await })),
        def("VER-1-009", Must, Negative, Role::Any, None, "a Hello with minVersion > maxVersion is refused", "wire.capnp Hello", MINMAX)
            .run(|ctx| Box::pin(async move {
                let bytes = HelloSpec { version: 2, min_version: 3, max_version: 2, ..HelloSpec::default() }.frame();
                let (_conn, reply) = send_hello(ctx, &bytes).await?;
                let expected = "no HelloResponse: Error(malformed | unsupportedVersion), a reset or a close";
                Ok(match reply_frame(&reply) {
                    Ok(f) if f.code == code::HELLO_RESPONSE => Outcome::fail(expected, "answered with HelloResponse"),
                    Ok(f) if f.code == code::ERROR => match expect_error(&reply, &["malformed", "unsupportedVersion"]) {
                        Ok(e) => Outcome::pass(expected, e.to_string()),
                        Err(e) => Outcome::fail(expected, e),
                    },
                    Ok(f) => Outcome::fail(expected, format!("unexpected frame 0x{:02x}", f.code)),
                    Err(e) => Outcome::pass(expected, e),
                })
            })),
        def("VER-3-010", Must, Negative, Role::Any, None, "a request with version above the target's maximum gets Error(unsupportedVersion)", "schema/README.md §3", MSG_VERSION)
            .run(|ctx| Box::pin(async move {
                let (_, tmax) = range(ctx);
                request_version(ctx, tmax.saturating_add(1), false).await
            })),
        def("VER-3-011", Must, Negative, Role::Any, None, "Error(unsupportedVersion) for a request carries the target's range", "schema/README.md §3", MSG_VERSION)
            .run(|ctx| Box::pin(async move {
                let (_, tmax) = range(ctx);
                request_version(ctx, tmax.saturating_add(1), true).await
            })),
        def("VER-3-012", Must, Negative, Role::Any, None, "a request with version 0 (below the minimum) gets Error(unsupportedVersion)", "schema/README.md §3", MSG_VERSION)
            .run(|ctx| Box::pin(async move { request_version(ctx, 0, false).await })),
        def("VER-3-013", Must, Limit, Role::Any, None, "a request with version 65535 gets Error(unsupportedVersion)", "schema/README.md §3", MSG_VERSION)
            .run(|ctx| Box::pin(async move { request_version(ctx, u16::MAX, false).await })),
        def("VER-3-014", Must, Negative, Role::Any, Some("pull-sync/1"), "the version is judged before the rest of the message", "schema/README.md §3", MSG_VERSION)
            .run(|ctx| Box::pin(async move {
                let (_, tmax) = range(ctx);
                let version = tmax.saturating_add(1);
                // A 3-byte id would be `malformed` at version 2.
                let bytes = wire::build::<distsoc_schema::social_capnp::pull_sync_request::Owned, _>(code::PULL_SYNC_REQUEST, |mut b| {
                    b.set_version(version);
                    b.init_ids(1).set(0, &[1, 2, 3]);
                });
                let s = ctx.connect().await?;
                let reply = s.request(&bytes).await;
                let expected = "PullSyncRequest with version above the maximum and a 3-byte id: Error(unsupportedVersion), not malformed";
                let outcome = match expect_error(&reply, &["unsupportedVersion"]) {
                    Ok(e) => Outcome::pass(expected, e.to_string()),
                    Err(e) => Outcome::fail(expected, e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("VER-3-015", Must, Negative, Role::Any, None, "Error(unsupportedVersion).version is the receiver's maximum", "wire.capnp Error", ERR_VERSION)
            .run(|ctx| Box::pin(async move {
                let (_, tmax) = range(ctx);
                let (bytes, name) = probe_with_version(ctx, tmax.saturating_add(1));
                let s = ctx.connect().await?;
                let reply = s.request(&bytes).await;
                let expected = format!("{name} with a too-high version: Error(unsupportedVersion) with version {tmax}");
                Ok(match expect_error(&reply, &["unsupportedVersion"]) {
                    Ok(e) => Outcome::check(e.version == tmax, expected, format!("Error.version {}", e.version)),
                    Err(e) => Outcome::fail(expected, e),
                })
            })),
        def("VER-1-016", Must, Positive, Role::Any, None, "HelloResponse: minVersion ≤ version ≤ maxVersion, inside the Hello's range", "schema/README.md §1", NEGOTIATE)
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let h = &s.hello;
                let ok = h.min_version <= h.version && h.version <= h.max_version && h.version == wire::PROTOCOL_VERSION;
                Ok(Outcome::check(ok, "minVersion ≤ version ≤ maxVersion and version = 2 for a Hello [2, 2]", format!("version {} in [{}, {}]", h.version, h.min_version, h.max_version)))
            })),
        def("VER-1-017", Must, Positive, Role::Any, None, "replies after Hello carry the selected version", "wire.capnp HelloResponse", LATER)
            .run(|ctx| Box::pin(async move {
                let probe = ctx.probe();
                let s = ctx.connect().await?;
                let reply = s.request(&probe.frame).await;
                let expected = format!("{} reply with version {}", probe.name, s.hello.version);
                Ok(match expect_code(&reply, probe.response).and_then(|f| f.version()) {
                    Ok(v) => Outcome::check(v == s.hello.version, expected, format!("version {v}")),
                    Err(e) => Outcome::fail(expected, e),
                })
            })),
        def("VER-1-018", Must, Positive, Role::Any, None, "Hello whose `version` is above the responder's maximum but whose range overlaps is accepted", "wire.capnp Hello", "Hello.version: Protocol version of this message; the sender's maximum. [...] the responder answers `HelloResponse` with the selected version (the highest version in both ranges)")
            .run(|ctx| Box::pin(async move {
                let (_, tmax) = range(ctx);
                let bytes = HelloSpec { version: tmax.saturating_add(3), min_version: tmax, max_version: tmax.saturating_add(3), ..HelloSpec::default() }.frame();
                let (_conn, reply) = send_hello(ctx, &bytes).await?;
                let expected = format!("HelloResponse selecting version {tmax}");
                Ok(match expect_code(&reply, code::HELLO_RESPONSE).and_then(|f| HelloInfo::read(&f)) {
                    Ok(h) => Outcome::check(h.version == tmax, expected, format!("version {}", h.version)),
                    Err(e) => Outcome::fail(expected, e),
                })
            })),
        def("VER-1-600", Must, Negative, Role::Any, None, "a Hello with minVersion > maxVersion gets Error(malformed) with requestCode 0x00, then close 0x2", "schema/README.md §1.3", EMPTY_RANGE)
            .run(|ctx| Box::pin(async move {
                let bytes = HelloSpec { version: 2, min_version: 3, max_version: 2, ..HelloSpec::default() }.frame();
                let (conn, reply) = send_hello(ctx, &bytes).await?;
                let expected = "Error(malformed) with requestCode 0x00, then application close 0x2";
                let mut o = match expect_error(&reply, &["malformed"]) {
                    Ok(e) => Outcome::check(e.request_code == 0, expected, e.to_string()),
                    Err(got) => Outcome::fail(expected, got),
                };
                match conn.closed_within(ctx.timeouts.reply).await {
                    Some(crate::suite::client::Closed::Application(0x2, why)) => {
                        o.actual.push_str(&format!("; closed 0x2 ({why})"));
                    }
                    other => {
                        o.passed = false;
                        o.actual.push_str(&other.map_or("; still open".to_string(), |c| format!("; {c}")));
                    }
                }
                Ok(o)
            })),
    ]
}
