//! The wire cases, one module per area, and the helpers they share.
//!
//! Adding an area: write `pub(crate) fn cases() -> Vec<Case>` in a new
//! module using [`def`] and the helpers below ([`refuse`], [`served`],
//! [`refused_connection`]), list it in [`all`], and append the new ids to
//! `conformance/cases.txt`.

use super::client::{ConnectOptions, Reply};
use super::ctx::{
    error_words, expect_code, expect_error, reply_frame, CaseError, Ctx, HelloSpec, Outcome,
};
use super::model::{Kind, Level, Role};
use super::registry::{Case, Def};
use super::wire::code;

pub mod disc;
pub mod err;
pub mod frm;
pub mod hs;
pub mod mbx;
pub mod mbx_paging;
pub mod mesh;
pub mod node;
pub mod post;
pub mod res;
pub mod rl;
pub mod sig;
pub mod sync;
pub mod unk;
pub mod ver;

/// Every case, in report order.
#[must_use]
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(hs::cases());
    v.extend(ver::cases());
    v.extend(frm::cases());
    v.extend(unk::cases());
    v.extend(err::cases());
    v.extend(post::cases());
    v.extend(sig::cases());
    v.extend(sync::cases());
    v.extend(node::cases());
    v.extend(mbx::cases());
    v.extend(mbx_paging::cases());
    v.extend(disc::cases());
    v.extend(rl::cases());
    v.extend(res::cases());
    v.extend(mesh::cases());
    v
}

/// The static part of a case.
#[allow(clippy::too_many_arguments)]
#[must_use]
pub fn def(
    id: &'static str,
    level: Level,
    kind: Kind,
    role: Role,
    capability: Option<&'static str>,
    title: impl Into<String>,
    spec_ref: &'static str,
    requirement: &'static str,
) -> Def {
    Def {
        id,
        level,
        kind,
        role,
        capability,
        title: title.into(),
        spec_ref,
        requirement,
    }
}

/// Sends `bytes` on a fresh stream of a fresh session: the reply must be an
/// `Error` with one of `allowed`, and the connection must stay usable.
pub async fn refuse(ctx: &mut Ctx, bytes: &[u8], allowed: &[&str]) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let reply = s.exchange(bytes).await;
    let expected = format!("{} on the stream", error_words(allowed));
    let outcome = match expect_error(&reply, allowed) {
        Ok(e) => Outcome::pass(&expected, e.to_string()),
        Err(got) => Outcome::fail(&expected, got),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

/// Sends `bytes` as a request: the reply must be a well-formed frame with
/// code `response` (the request is served normally).
pub async fn served(
    ctx: &mut Ctx,
    bytes: &[u8],
    response: u8,
    what: &str,
) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let reply = s.request(bytes).await;
    let expected = format!("{what} is served: a reply with code 0x{response:02x}");
    let outcome = match expect_code(&reply, response) {
        Ok(_) => Outcome::pass(&expected, format!("reply 0x{response:02x}")),
        Err(got) => Outcome::fail(&expected, got),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

/// Sends `bytes` as a request: the reply must NOT be an error about its size
/// or shape (`tooLarge`, `malformed`, `unknownMessage`); any other reply
/// (its response, or an application error such as `notFound`) passes.
pub async fn accepted(ctx: &mut Ctx, bytes: &[u8], what: &str) -> Result<Outcome, CaseError> {
    let s = ctx.connect().await?;
    let reply = s.request(bytes).await;
    let expected = format!("{what} is accepted: no Error(tooLarge / malformed / unknownMessage)");
    let outcome = match reply_frame(&reply) {
        Ok(f) if f.code == code::ERROR => match f.error() {
            Ok(e) if e.is("tooLarge") || e.is("malformed") || e.is("unknownMessage") => {
                Outcome::fail(&expected, e.to_string())
            }
            Ok(e) => Outcome::pass(&expected, e.to_string()),
            Err(e) => Outcome::fail(&expected, format!("undecodable Error: {e}")),
        },
        Ok(f) => Outcome::pass(&expected, format!("reply 0x{:02x}", f.code)),
        Err(got) => Outcome::fail(&expected, got),
    };
    Ok(outcome.and_usable(ctx.still_usable(&s).await))
}

/// Whether `reply` is a HelloResponse.
fn is_hello_response(reply: &Reply) -> bool {
    matches!(reply_frame(reply), Ok(f) if f.code == code::HELLO_RESPONSE)
}

/// A connection with `opts` must not get to the point where Hello is
/// served: the handshake fails, or the connection is closed, or Hello is
/// refused.
pub async fn refused_connection(
    ctx: &mut Ctx,
    opts: &ConnectOptions,
    what: &str,
) -> Result<Outcome, CaseError> {
    let expected =
        format!("{what}: the handshake fails or the connection is closed before Hello is answered");
    let conn = match ctx.connect_raw(opts).await {
        Err(e) => return Ok(Outcome::pass(expected, format!("refused: {e}"))),
        Ok(conn) => conn,
    };
    let reply = conn
        .exchange(&HelloSpec::default().frame(), 1 << 20, ctx.timeouts.reply)
        .await;
    if is_hello_response(&reply) {
        Ok(Outcome::fail(
            expected,
            "handshake completed and Hello was answered with HelloResponse",
        ))
    } else {
        Ok(Outcome::pass(expected, format!("Hello got {reply}")))
    }
}
