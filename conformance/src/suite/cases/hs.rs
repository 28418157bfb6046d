//! HS: the QUIC/TLS handshake, identity pinning and the Hello exchange
//! (schema/README.md §1).

use super::{def, refused_connection, served};
use crate::suite::client::{self, ClientAuth};
use crate::suite::ctx::{expect_code, expect_error, reply_frame, HelloInfo, HelloSpec, Outcome};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::code;

const PIN: &str = "Each side presents a self-signed X.509 certificate whose subject public key is an Ed25519 key: the node's network key. Its 32 raw bytes are the node's NodeId. A client connecting to `NodeId@host:port` must abort the handshake if the server's key is not that NodeId; a server identifies each client by the key of its client certificate.";
const ALPN: &str =
    "QUIC (RFC 9000) with TLS 1.3, ALPN `distsoc/2`, one connection per pair of nodes.";
const SETUP: &str = "The initiator's first stream carries `Hello`; the responder answers `HelloResponse` with the selected version (the highest version in both ranges) [...] No other request may precede `HelloResponse`.";
const STREAMS: &str = "Every request opens a new bidirectional stream, sends one frame and finishes its send side; the responder sends one reply frame (the response code of the request, or `Error`) and finishes.";
const HELLO_FIRST: &str = "Hello: The first request on a new connection, sent by the initiator on its first bidirectional stream; answered by HelloResponse (0x05) (wire.capnp).";
const ROLES: &str =
    "HelloResponse.roles: Roles the responder plays. Empty means [node] (wire.capnp).";
const OBSERVED: &str = "HelloResponse.observedAddress: The address the responder sees the initiator's packets come from (wire.capnp).";
const CAPS: &str = "capabilities: Optional features the sender serves, as \"name/major\" tokens [...] At most 64 entries of at most 64 bytes (wire.capnp).";
const AGENT: &str =
    "agent: Free-form implementation name and version [...] At most 128 bytes (wire.capnp).";

const SETUP_ERRORS: &str = "A first stream that is a request, push or response other than `Hello`: `Error(unauthorized)`, `requestCode` = that frame's code; then close with `protocolViolation` (0x2). A second `Hello` on an established connection: `Error(unknownMessage)`, `requestCode` 0x00; the connection stays usable. (schema/README.md §1.3)";

/// A request as the first stream: `Error(unauthorized)` naming its code,
/// then the connection is closed with `protocolViolation` (0x2).
async fn request_before_hello(
    ctx: &mut crate::suite::ctx::Ctx,
) -> Result<Outcome, crate::suite::ctx::CaseError> {
    let probe = ctx.probe();
    let (conn, _) = ctx.connect_pinned().await?;
    let reply = conn
        .exchange(&probe.frame, 1 << 20, ctx.timeouts.reply)
        .await;
    let expected = format!(
        "{} as the first stream: Error(unauthorized) with requestCode 0x{:02x}, then application close 0x2",
        probe.name, probe.code
    );
    let mut o = match expect_error(&reply, &["unauthorized"]) {
        Ok(e) if e.request_code == probe.code => Outcome::pass(&expected, e.to_string()),
        Ok(e) => Outcome::fail(&expected, e.to_string()),
        Err(got) => Outcome::fail(&expected, got),
    };
    match conn.closed_within(ctx.timeouts.reply).await {
        Some(client::Closed::Application(0x2, why)) => {
            o.actual.push_str(&format!("; closed 0x2 ({why})"));
        }
        other => {
            o.passed = false;
            o.actual.push_str(&match other {
                Some(c) => format!("; {c}"),
                None => "; still open".to_string(),
            });
        }
    }
    Ok(o)
}

/// The HS cases.
#[allow(clippy::too_many_lines)]
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Negative, Positive};
    use Level::{Must, Should};
    vec![
        def("HS-1-001", Must, Positive, Role::Any, None, "server presents the key of its NodeId", "schema/README.md §1", PIN)
            .run(|ctx| Box::pin(async move {
                let opts = ctx.options();
                let conn = ctx.connect_raw(&opts).await?;
                let want = hex::encode(ctx.target.node_id);
                let got = conn.presented.map_or_else(|| "no Ed25519 key".to_string(), hex::encode);
                Ok(Outcome::check(conn.presented == Some(ctx.target.node_id), format!("server key {want}"), format!("server key {got}")))
            })),
        def("HS-1-002", Must, Positive, Role::Any, None, "ALPN distsoc/2 is negotiated", "schema/README.md §1", ALPN)
            .run(|ctx| Box::pin(async move {
                let opts = ctx.options();
                let conn = ctx.connect_raw(&opts).await?;
                let got = conn.alpn.as_deref().map_or_else(|| "none".to_string(), |a| String::from_utf8_lossy(a).into_owned());
                Ok(Outcome::check(conn.alpn.as_deref() == Some(client::ALPN), "ALPN distsoc/2", format!("ALPN {got}")))
            })),
        def("HS-1-003", Must, Negative, Role::Any, None, "wrong ALPN distsoc/1 is refused", "schema/README.md §1", ALPN)
            .run(|ctx| Box::pin(async move {
                let mut opts = ctx.options();
                opts.alpn = vec![b"distsoc/1".to_vec()];
                refused_connection(ctx, &opts, "client offers only ALPN distsoc/1").await
            })),
        def("HS-1-004", Must, Negative, Role::Any, None, "foreign ALPN h3 is refused", "schema/README.md §1", ALPN)
            .run(|ctx| Box::pin(async move {
                let mut opts = ctx.options();
                opts.alpn = vec![b"h3".to_vec()];
                refused_connection(ctx, &opts, "client offers only ALPN h3").await
            })),
        def("HS-1-005", Must, Negative, Role::Any, None, "no ALPN at all is refused", "schema/README.md §1", ALPN)
            .run(|ctx| Box::pin(async move {
                let mut opts = ctx.options();
                opts.alpn = Vec::new();
                refused_connection(ctx, &opts, "client offers no ALPN").await
            })),
        def("HS-1-006", Should, Positive, Role::Any, None, "distsoc/2 is chosen from a list of ALPNs", "schema/README.md §1", ALPN)
            .run(|ctx| Box::pin(async move {
                let mut opts = ctx.options();
                opts.alpn = vec![b"h3".to_vec(), client::ALPN.to_vec()];
                let expected = "handshake completes with ALPN distsoc/2";
                match ctx.connect_raw(&opts).await {
                    Ok(conn) => Ok(Outcome::check(conn.alpn.as_deref() == Some(client::ALPN), expected, format!("ALPN {:?}", conn.alpn.as_deref().map(String::from_utf8_lossy)))),
                    Err(e) => Ok(Outcome::fail(expected, e.to_string())),
                }
            })),
        def("HS-1-007", Must, Negative, Role::Any, None, "client without a certificate is refused", "schema/README.md §1", PIN)
            .run(|ctx| Box::pin(async move {
                let mut opts = ctx.options();
                opts.auth = ClientAuth::None;
                refused_connection(ctx, &opts, "client presents no certificate").await
            })),
        def("HS-1-008", Must, Negative, Role::Any, None, "client with a non-Ed25519 (ECDSA P-256) certificate is refused", "schema/README.md §1", PIN)
            .run(|ctx| Box::pin(async move {
                let mut opts = ctx.options();
                let cert = client::ecdsa_certificate()?;
                opts.auth = ClientAuth::Forged { cert, seed: ctx.random32() };
                refused_connection(ctx, &opts, "client presents an ECDSA certificate").await
            })),
        def("HS-1-009", Must, Negative, Role::Any, None, "client with a malformed (non-DER) certificate is refused", "schema/README.md §1", PIN)
            .run(|ctx| Box::pin(async move {
                let mut opts = ctx.options();
                let mut cert = vec![0x30, 0x82, 0x01, 0x00];
                cert.extend_from_slice(&ctx.random32());
                opts.auth = ClientAuth::Forged { cert, seed: ctx.random32() };
                refused_connection(ctx, &opts, "client presents 36 bytes of garbage as its certificate").await
            })),
        def("HS-1-010", Must, Negative, Role::Any, None, "client certificate key differs from the key that signs the handshake", "schema/README.md §1", PIN)
            .run(|ctx| Box::pin(async move {
                let mut opts = ctx.options();
                let cert = client::ed25519_certificate(&ctx.random32())?;
                opts.auth = ClientAuth::Forged { cert, seed: ctx.random32() };
                refused_connection(ctx, &opts, "client certificate of key A, CertificateVerify by key B").await
            })),
        def("HS-1-011", Must, Negative, Role::Any, None, "a request before Hello is not served", "schema/README.md §1", SETUP)
            .run(|ctx| Box::pin(async move {
                let probe = ctx.probe();
                let (conn, _) = ctx.connect_pinned().await?;
                let reply = conn.exchange(&probe.frame, 1 << 20, ctx.timeouts.reply).await;
                let expected = format!("{} as the first stream is not served (an Error, a reset or a close)", probe.name);
                Ok(match reply_frame(&reply) {
                    Ok(f) if f.code == probe.response => Outcome::fail(expected, format!("served: reply 0x{:02x}", f.code)),
                    Ok(f) if f.code == code::ERROR => Outcome::pass(expected, reply.to_string()),
                    Ok(f) => Outcome::fail(expected, format!("unexpected frame 0x{:02x}", f.code)),
                    Err(_) => Outcome::pass(expected, reply.to_string()),
                })
            })),
        def("HS-1-012", Should, Negative, Role::Any, None, "a second Hello on an established connection is refused", "wire.capnp Hello", HELLO_FIRST)
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let reply = s.exchange(&HelloSpec::default().frame()).await;
                let expected = "an Error on the stream";
                let outcome = match reply_frame(&reply) {
                    Ok(f) if f.code == code::ERROR => Outcome::pass(expected, reply.to_string()),
                    _ => Outcome::fail(expected, reply.to_string()),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("HS-1-013", Must, Positive, Role::Any, None, "Hello is answered by one HelloResponse frame, then the stream finishes", "schema/README.md §1", STREAMS)
            .run(|ctx| Box::pin(async move {
                let (conn, _) = ctx.connect_pinned().await?;
                let reply = conn.exchange(&HelloSpec::default().frame(), 1 << 20, ctx.timeouts.reply).await;
                let expected = "exactly one well-formed HelloResponse (0x05) frame, then FIN";
                Ok(match expect_code(&reply, code::HELLO_RESPONSE) {
                    Ok(f) => match HelloInfo::read(&f) {
                        Ok(h) => Outcome::pass(expected, format!("HelloResponse version {}", h.version)),
                        Err(e) => Outcome::fail(expected, format!("HelloResponse does not read: {e}")),
                    },
                    Err(e) => Outcome::fail(expected, e),
                })
            })),
        def("HS-1-014", Should, Positive, Role::Any, None, "HelloResponse declares the role under test", "wire.capnp HelloResponse", ROLES)
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let roles = &s.hello.roles;
                let ok = match ctx.role {
                    Role::Anchor => roles.contains(&1),
                    Role::Node => roles.is_empty() || roles.contains(&0),
                    Role::Any => true,
                };
                Ok(Outcome::check(ok, format!("roles include {:?}", ctx.role), format!("roles {roles:?} (0 = node, 1 = anchor)")))
            })),
        def("HS-1-015", Should, Positive, Role::Any, None, "HelloResponse.observedAddress is the client's address", "wire.capnp HelloResponse", OBSERVED)
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let local = s.conn.local_addr();
                let expected = format!("observedAddress {}", local.map_or_else(|| "?".into(), |a| a.to_string()));
                let ok = match (s.hello.observed, local) {
                    (Some(o), Some(l)) => o.port() == l.port() && (o.ip() == l.ip() || !l.ip().is_loopback() || o.ip().is_loopback()),
                    _ => false,
                };
                Ok(Outcome::check(ok, expected, format!("observedAddress {:?}", s.hello.observed)))
            })),
        def("HS-1-016", Must, Positive, Role::Any, None, "declared capabilities: at most 64 tokens of at most 64 bytes", "wire.capnp Hello", CAPS)
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let caps = &s.hello.capabilities;
                let ok = caps.len() <= 64 && caps.iter().all(|c| c.len() <= 64);
                Ok(Outcome::check(ok, "≤ 64 tokens, each ≤ 64 bytes", format!("{} tokens: {caps:?}", caps.len())))
            })),
        def("HS-1-017", Must, Positive, Role::Any, None, "declared agent is at most 128 bytes", "wire.capnp HelloResponse", AGENT)
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                Ok(Outcome::check(s.hello.agent_len <= 128, "agent ≤ 128 bytes", format!("agent {:?} ({} bytes)", s.hello.agent, s.hello.agent_len)))
            })),
        def("HS-1-018", Must, Negative, Role::Any, None, "Hello sent on a unidirectional stream does not open the connection", "schema/README.md §1", SETUP)
            .run(|ctx| Box::pin(async move {
                let probe = ctx.probe();
                let (conn, _) = ctx.connect_pinned().await?;
                conn.send_uni(&HelloSpec::default().frame()).await?;
                let reply = conn.exchange(&probe.frame, 1 << 20, ctx.timeouts.silence * 3).await;
                let expected = format!("after a Hello on a unidirectional stream, {} on a bidirectional first stream is not served", probe.name);
                Ok(match reply_frame(&reply) {
                    Ok(f) if f.code == probe.response => Outcome::fail(expected, "served"),
                    _ => Outcome::pass(expected, reply.to_string()),
                })
            })),
        def("HS-1-019", Must, Positive, Role::Any, None, "requests on later streams are served after Hello", "schema/README.md §1", SETUP)
            .run(|ctx| Box::pin(async move {
                let probe = ctx.probe();
                served(ctx, &probe.frame, probe.response, probe.name).await
            })),
        def("HS-1-020", Must, Negative, Role::Any, None, "a response code (HelloResponse) as the first stream is not taken as Hello", "schema/README.md §1", SETUP)
            .run(|ctx| Box::pin(async move {
                let (conn, _) = ctx.connect_pinned().await?;
                let bytes = crate::suite::wire::build::<distsoc_schema::wire_capnp::hello_response::Owned, _>(code::HELLO_RESPONSE, |mut b| {
                    b.set_version(2);
                    b.set_min_version(2);
                    b.set_max_version(2);
                });
                let reply = conn.exchange(&bytes, 1 << 20, ctx.timeouts.reply).await;
                let expected = "no HelloResponse: an Error, a reset or a close";
                Ok(match reply_frame(&reply) {
                    Ok(f) if f.code == code::HELLO_RESPONSE => Outcome::fail(expected, "answered with HelloResponse"),
                    _ => Outcome::pass(expected, reply.to_string()),
                })
            })),
        def("HS-1-022", Must, Negative, Role::Any, None, "an over-cap Hello (64 KiB + 8) is refused", "schema/README.md §2", "compute the total size from the segment table and reject it with `tooLarge` if it exceeds the code's cap (Hello: 64 KiB)")
            .run(|ctx| Box::pin(async move {
                let (conn, _) = ctx.connect_pinned().await?;
                let words = (64 * 1024 - 8) / 8 + 1;
                let bytes = crate::suite::wire::header(code::HELLO, 0, &[words as u32], true);
                let reply = conn.exchange(&bytes, 1 << 20, ctx.timeouts.reply).await;
                let expected = "Error(tooLarge) (the connection may then be closed)";
                Ok(match expect_error(&reply, &["tooLarge"]) {
                    Ok(e) => Outcome::pass(expected, e.to_string()),
                    Err(e) => Outcome::fail(expected, e),
                })
            })),
        def("HS-1-023", Must, Negative, Role::Any, None, "a malformed Hello is refused and answered with Error(malformed)", "schema/README.md §1", "An error on one stream never closes the connection: malformed, oversize and unknown messages get an `Error` on their stream")
            .run(|ctx| Box::pin(async move {
                let (conn, _) = ctx.connect_pinned().await?;
                let bytes = crate::suite::wire::single(code::HELLO, &[crate::suite::wire::sp(0, 2, 0), 2]);
                let reply = conn.exchange(&bytes, 1 << 20, ctx.timeouts.reply).await;
                let expected = "Error(malformed) (the connection may then be closed)";
                Ok(match expect_error(&reply, &["malformed"]) {
                    Ok(e) => Outcome::pass(expected, e.to_string()),
                    Err(e) => Outcome::fail(expected, e),
                })
            })),
        def("HS-1-024", Must, Negative, Role::Any, None, "a push frame (PostNotification) as the first stream is not taken as Hello", "schema/README.md §1", SETUP)
            .run(|ctx| Box::pin(async move {
                let (a, p) = (ctx.random32(), ctx.random32());
                let bytes = crate::suite::ctx::req::post_notification(2, &a, &p);
                let (conn, _) = ctx.connect_pinned().await?;
                let reply = conn.exchange(&bytes, 1 << 20, ctx.timeouts.reply).await;
                let expected = "no Ack and no HelloResponse: an Error, a reset or a close";
                Ok(match reply_frame(&reply) {
                    Ok(f) if f.code == code::ACK || f.code == code::HELLO_RESPONSE => Outcome::fail(expected, format!("answered with 0x{:02x}", f.code)),
                    _ => Outcome::pass(expected, reply.to_string()),
                })
            })),
        def("HS-1-025", Must, Negative, Role::Any, None, "an empty first stream is not taken as Hello", "schema/README.md §1", SETUP)
            .run(|ctx| Box::pin(async move {
                let (conn, _) = ctx.connect_pinned().await?;
                let reply = conn.exchange(&[], 1 << 20, ctx.timeouts.reply).await;
                let expected = "no HelloResponse: Error(malformed), a reset or a close";
                Ok(match reply_frame(&reply) {
                    Ok(f) if f.code == code::HELLO_RESPONSE => Outcome::fail(expected, "answered with HelloResponse"),
                    _ => Outcome::pass(expected, reply.to_string()),
                })
            })),
        def("HS-1-600", Must, Negative, Role::Any, None, "a request as the first stream gets Error(unauthorized) with its code, then close 0x2", "schema/README.md §1.3", SETUP_ERRORS)
            .run(|ctx| Box::pin(request_before_hello(ctx))),
        def("HS-1-601", Must, Negative, Role::Any, None, "a second Hello gets Error(unknownMessage) with requestCode 0x00; the connection stays usable", "schema/README.md §1.3", SETUP_ERRORS)
            .run(|ctx| Box::pin(async move {
                let s = ctx.connect().await?;
                let reply = s.exchange(&HelloSpec::default().frame()).await;
                let expected = "Error(unknownMessage) with requestCode 0x00";
                let outcome = match expect_error(&reply, &["unknownMessage"]) {
                    Ok(e) => Outcome::check(e.request_code == 0, expected, e.to_string()),
                    Err(got) => Outcome::fail(expected, got),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
    ]
}
