//! [`Router`]: a [`Handler`] built from one typed handler per message code.
//!
//! A role registers `.request::<R, _, _>(f)` for each request it serves
//! (`f` returns `R::Response` or an `Error`) and `.push::<P, _, _>(f)` for
//! each push it consumes (`f` returns `()`, answered `Ack` on a bidirectional
//! stream, or an `Error`). The types tie each handler to its code, so a
//! handler cannot answer with the wrong response type.
//!
//! For every message the router:
//!
//! 1. runs the role's guard, if any (admission: draining, rate limits, bans),
//!    for registered and unregistered codes alike;
//! 2. runs the handler registered for the message's code, or answers
//!    `Error(unknownMessage)` with the message `"<Code> is not served by
//!    <role>"`;
//! 3. logs a refusal at debug level (`peer`, `code`, `error`).
//!
//! The `requestCode` of every `Error` is set by the dispatcher.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::wire;
use distsoc_protocol::messages::{EncodeReply, Message, ReplyOf};
use distsoc_protocol::request::{Push, Request};
use tracing::debug;

use super::dispatch::{Handler, HandlerFuture, Reply, ReplyFuture, RequestCtx};
use super::PeerInfo;

/// What a registered handler returns, type-erased: the reply (`None` for a
/// push) or an `Error`.
type Routed = Result<Option<Reply>, wire::Error>;
type Route<S> = Box<
    dyn Fn(Arc<S>, RequestCtx, Message) -> Pin<Box<dyn Future<Output = Routed> + Send>>
        + Send
        + Sync,
>;
type Guard<S> = Box<dyn Fn(&S, &RequestCtx, MessageCode) -> Result<(), wire::Error> + Send + Sync>;
type Admit<S> = Box<dyn Fn(&S, &NodeId, SocketAddr) -> bool + Send + Sync>;
type Connected<S> = Box<dyn Fn(&S, Arc<PeerInfo>) + Send + Sync>;

/// A [`Handler`] that dispatches each message to the handler registered for
/// its code; `S` is the role's state, handed to every handler.
pub struct Router<S> {
    state: Arc<S>,
    role: &'static str,
    routes: HashMap<MessageCode, Route<S>>,
    guard: Option<Guard<S>>,
    admit: Option<Admit<S>>,
    connected: Vec<Connected<S>>,
    disconnected: Vec<Connected<S>>,
}

impl<S> fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut codes: Vec<_> = self.routes.keys().copied().collect();
        codes.sort();
        f.debug_struct("Router")
            .field("role", &self.role)
            .field("codes", &codes)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Router<S> {
    /// A router with no handlers. `role` names the role in the
    /// `unknownMessage` answer to a code nobody registered ("a user node",
    /// "an anchor").
    pub fn new(state: Arc<S>, role: &'static str) -> Self {
        Self {
            state,
            role,
            routes: HashMap::new(),
            guard: None,
            admit: None,
            connected: Vec::new(),
            disconnected: Vec::new(),
        }
    }

    /// The state handed to the handlers.
    pub fn state(&self) -> &Arc<S> {
        &self.state
    }

    /// Serves request `R` with `f`. Registering a code twice keeps the later
    /// handler.
    pub fn request<R, F, Fut>(mut self, f: F) -> Self
    where
        R: Request,
        F: Fn(Arc<S>, RequestCtx, R) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R::Response, wire::Error>> + Send + 'static,
    {
        let route: Route<S> = Box::new(move |state, ctx, msg| match R::try_from(msg) {
            Ok(req) => {
                let fut = f(state, ctx, req);
                Box::pin(async move { fut.await.map(|r| Some(Reply::Message(r.into()))) })
            }
            Err(other) => Box::pin(std::future::ready(Err(misrouted(other.code())))),
        });
        self.routes.insert(R::CODE, route);
        self
    }

    /// Serves request `R` with `f`, whose reply encodes itself when it is
    /// sent ([`ReplyOf`] `R::Response`: the same frame as that response,
    /// built another way, e.g. from stored bytes). [`Handler::handle`]
    /// decodes it into the response; the transport calls
    /// [`Handler::handle_reply`] and sends it as it is.
    pub fn request_encoded<R, E, F, Fut>(mut self, f: F) -> Self
    where
        R: Request,
        E: ReplyOf<R::Response> + 'static,
        F: Fn(Arc<S>, RequestCtx, R) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<E, wire::Error>> + Send + 'static,
    {
        let route: Route<S> = Box::new(move |state, ctx, msg| match R::try_from(msg) {
            Ok(req) => {
                let fut = f(state, ctx, req);
                Box::pin(async move {
                    fut.await
                        .map(|r| Some(Reply::Encoded(Box::new(r) as Box<dyn EncodeReply>)))
                })
            }
            Err(other) => Box::pin(std::future::ready(Err(misrouted(other.code())))),
        });
        self.routes.insert(R::CODE, route);
        self
    }

    /// Consumes push `P` with `f` (`Ok(())` is answered `Ack` on a
    /// bidirectional stream). Registering a code twice keeps the later
    /// handler.
    pub fn push<P, F, Fut>(mut self, f: F) -> Self
    where
        P: Push,
        F: Fn(Arc<S>, RequestCtx, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), wire::Error>> + Send + 'static,
    {
        let route: Route<S> = Box::new(move |state, ctx, msg| match P::try_from(msg) {
            Ok(push) => {
                let fut = f(state, ctx, push);
                Box::pin(async move { fut.await.map(|()| None) })
            }
            Err(other) => Box::pin(std::future::ready(Err(misrouted(other.code())))),
        });
        self.routes.insert(P::CODE, route);
        self
    }

    /// Runs `f` before every message, registered code or not; an `Err` is
    /// the answer and no handler runs. Must be cheap and not block.
    pub fn guard(
        mut self,
        f: impl Fn(&S, &RequestCtx, MessageCode) -> Result<(), wire::Error> + Send + Sync + 'static,
    ) -> Self {
        self.guard = Some(Box::new(f));
        self
    }

    /// [`Handler::admit`]: whether an incoming peer may use the endpoint
    /// (default: all).
    pub fn admit(
        mut self,
        f: impl Fn(&S, &NodeId, SocketAddr) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.admit = Some(Box::new(f));
        self
    }

    /// [`Handler::on_connected`]: called when a connection's Hello exchange
    /// has completed (default: nothing). Every registered callback runs, in
    /// the order registered (a role's own and the mesh driver's).
    pub fn on_connected(mut self, f: impl Fn(&S, Arc<PeerInfo>) + Send + Sync + 'static) -> Self {
        self.connected.push(Box::new(f));
        self
    }

    /// [`Handler::on_disconnected`]: called when a connection announced to
    /// `on_connected` has closed (default: nothing). Every registered
    /// callback runs, in the order registered.
    pub fn on_disconnected(
        mut self,
        f: impl Fn(&S, Arc<PeerInfo>) + Send + Sync + 'static,
    ) -> Self {
        self.disconnected.push(Box::new(f));
        self
    }

    fn dispatch(&self, ctx: RequestCtx, msg: Message) -> ReplyFuture<'static> {
        let code = msg.code();
        if let Some(guard) = &self.guard {
            if let Err(e) = guard(&self.state, &ctx, code) {
                refused(&ctx, code, &e);
                return Box::pin(std::future::ready(Err(e)));
            }
        }
        let Some(route) = self.routes.get(&code) else {
            let e = wire::Error::new(
                ErrorCode::UnknownMessage,
                0,
                format!("{} is not served by {}", code.name(), self.role),
            );
            refused(&ctx, code, &e);
            return Box::pin(std::future::ready(Err(e)));
        };
        let peer = ctx.peer;
        let fut = route(self.state.clone(), ctx, msg);
        Box::pin(async move {
            let result = fut.await;
            if let Err(e) = &result {
                debug!(peer = %peer, code = code.name(), error = %e.code, "request refused");
            }
            result
        })
    }
}

/// Logs a refusal decided before any handler ran.
fn refused(ctx: &RequestCtx, code: MessageCode, e: &wire::Error) {
    debug!(peer = %ctx.peer, code = code.name(), error = %e.code, "request refused");
}

/// A message handed to the route of another code (cannot happen: routes
/// are keyed by the code of the type they decode).
fn misrouted(code: MessageCode) -> wire::Error {
    wire::Error::new(
        ErrorCode::Internal,
        0,
        format!("{code} reached the wrong handler"),
    )
}

/// A reply as a [`Message`]: an encoded one decoded (a failure is
/// `Error(internal)`: the reply could not have been sent either).
fn into_message(reply: Reply) -> Result<Message, wire::Error> {
    match reply {
        Reply::Message(m) => Ok(m),
        Reply::Encoded(e) => e.into_message().map_err(|error| {
            wire::Error::new(
                ErrorCode::Internal,
                0,
                format!("reply cannot be decoded: {error}"),
            )
        }),
    }
}

impl<S: Send + Sync + 'static> Handler for Router<S> {
    fn handle<'a>(&'a self, ctx: RequestCtx, msg: Message) -> HandlerFuture<'a> {
        let fut = self.dispatch(ctx, msg);
        Box::pin(async move { fut.await?.map(into_message).transpose() })
    }

    fn handle_reply<'a>(&'a self, ctx: RequestCtx, msg: Message) -> ReplyFuture<'a> {
        self.dispatch(ctx, msg)
    }

    fn on_connected(&self, info: Arc<PeerInfo>) {
        for f in &self.connected {
            f(&self.state, info.clone());
        }
    }

    fn on_disconnected(&self, info: Arc<PeerInfo>) {
        for f in &self.disconnected {
            f(&self.state, info.clone());
        }
    }

    fn admit(&self, peer: &NodeId, remote: SocketAddr) -> bool {
        self.admit
            .as_ref()
            .is_none_or(|f| f(&self.state, peer, remote))
    }
}
