//! Prometheus metrics over HTTP/1.1: `GET /metrics` on `metrics_listen`
//! (default `127.0.0.1:4502`), in the Prometheus text exposition format
//! 0.0.4. Unauthenticated: keep it on loopback or behind a firewall.
//!
//! Metrics (all prefixed `distsoc_anchor_`):
//!
//! | name | type | source |
//! | --- | --- | --- |
//! | `requests_total` | counter | requests handled (every outcome) |
//! | `requests_rate_limited_total` | counter | refused `rateLimited` |
//! | `requests_unauthorized_total` | counter | refused `unauthorized` |
//! | `requests_unavailable_total` | counter | answered `unavailable` |
//! | `posts_quota_refused_total{quota}` | counter | deposits (PushPost) refused `quotaExceeded`, by `quota="author"` / `"depositor"` |
//! | `messages_enqueued_total` | counter | mailbox messages enqueued |
//! | `checkins_written_total` | counter | check-ins written (verified addresses, coalesced per identity) |
//! | `dialbacks_total`, `dialbacks_verified_total` | counter | address-verification dial-backs attempted / that reached the NodeId |
//! | `messages_delivered_total` | counter | mailbox messages delivered |
//! | `connections` | gauge | open QUIC connections |
//! | `channels`, `queued_messages`, `queued_bytes`, `posts`, `checkins` | gauge | store sizes, cached for 5 s |
//! | `store_up` | gauge | 1 if the store sizes could be read, else 0 (sizes omitted) |
//! | `draining` | gauge | 1 while draining |
//! | `banned_identities` | gauge | identities banned by the operator |
//! | `mailbox_ttl_seconds` | gauge | retention of new enqueues |
//! | `uptime_seconds` | gauge | seconds since start |
//! | `build_info{version,protocol_version}` | gauge | always 1 |

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use distsoc_protocol::limits::PROTOCOL_VERSION;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::operator::OperatorState;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Most simultaneous metrics connections (scrapers are few).
const MAX_CONNECTIONS: usize = 32;

struct Exposition(String);

impl Exposition {
    fn metric(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        let _ = writeln!(
            self.0,
            "# HELP distsoc_anchor_{name} {help}\n# TYPE distsoc_anchor_{name} {kind}\ndistsoc_anchor_{name} {value}"
        );
    }
}

/// The exposition text.
pub(crate) async fn render(state: &OperatorState) -> String {
    let service = &state.service;
    let c = service.counters();
    let mut out = Exposition(String::with_capacity(4096));
    for (name, help, value) in [
        (
            "requests_total",
            "Requests handled (every outcome).",
            &c.requests,
        ),
        (
            "requests_rate_limited_total",
            "Requests refused with rateLimited.",
            &c.rate_limited,
        ),
        (
            "requests_unauthorized_total",
            "Requests refused with unauthorized (including banned identities).",
            &c.unauthorized,
        ),
        (
            "requests_unavailable_total",
            "Requests answered unavailable (store down or draining).",
            &c.unavailable,
        ),
        (
            "messages_enqueued_total",
            "Mailbox messages enqueued.",
            &c.enqueued,
        ),
        (
            "checkins_written_total",
            "Check-ins written to the store (verified addresses, coalesced per identity).",
            &c.checkins_written,
        ),
        (
            "dialbacks_total",
            "Dial-backs attempted to verify announced listen addresses.",
            &c.dialbacks,
        ),
        (
            "dialbacks_verified_total",
            "Dial-backs that reached the announced NodeId.",
            &c.dialbacks_verified,
        ),
        (
            "messages_delivered_total",
            "Mailbox messages delivered by Fetch/FetchWait.",
            &c.delivered,
        ),
    ] {
        out.metric(name, "counter", help, value.load(Ordering::Relaxed));
    }
    let _ = writeln!(
        out.0,
        "# HELP distsoc_anchor_posts_quota_refused_total Deposits (PushPost) refused with quotaExceeded.\n\
         # TYPE distsoc_anchor_posts_quota_refused_total counter\n\
         distsoc_anchor_posts_quota_refused_total{{quota=\"author\"}} {}\n\
         distsoc_anchor_posts_quota_refused_total{{quota=\"depositor\"}} {}",
        c.quota_refused_author.load(Ordering::Relaxed),
        c.quota_refused_depositor.load(Ordering::Relaxed),
    );
    out.metric(
        "connections",
        "gauge",
        "Open QUIC connections.",
        state.connections(),
    );
    match state.cached_stats().await {
        Ok(s) => {
            out.metric(
                "store_up",
                "gauge",
                "1 if the store sizes could be read.",
                1,
            );
            for (name, help, value) in [
                ("channels", "DM channels.", s.channels),
                (
                    "queued_messages",
                    "Queued mailbox messages (including expired ones not yet swept).",
                    s.queued_messages,
                ),
                (
                    "queued_bytes",
                    "Payload bytes of the queued mailbox messages.",
                    s.queued_bytes,
                ),
                ("posts", "Stored posts.", s.posts),
                ("checkins", "Nodes in the check-in table.", s.checkins),
            ] {
                out.metric(name, "gauge", help, value);
            }
        }
        Err(e) => {
            debug!(error = %e, "metrics: store stats unavailable");
            out.metric(
                "store_up",
                "gauge",
                "1 if the store sizes could be read.",
                0,
            );
        }
    }
    out.metric(
        "draining",
        "gauge",
        "1 while the anchor refuses new requests.",
        u8::from(service.is_draining()),
    );
    out.metric(
        "banned_identities",
        "gauge",
        "Identities banned by the operator.",
        service.banned().len(),
    );
    out.metric(
        "mailbox_ttl_seconds",
        "gauge",
        "Retention of newly enqueued mailbox messages.",
        service.mailbox_ttl().as_secs(),
    );
    out.metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the anchor started.",
        state.started.elapsed().as_secs(),
    );
    let _ = writeln!(
        out.0,
        "# HELP distsoc_anchor_build_info Build information (always 1).\n\
         # TYPE distsoc_anchor_build_info gauge\n\
         distsoc_anchor_build_info{{version=\"{}\",protocol_version=\"{PROTOCOL_VERSION}\"}} 1",
        env!("CARGO_PKG_VERSION"),
    );
    out.0
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(
    state: Arc<OperatorState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/metrics" {
        return Ok(text(StatusCode::NOT_FOUND, "not found: try /metrics\n"));
    }
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(render(&state).await)
    };
    let mut r = Response::new(Full::new(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(CONTENT_TYPE),
    );
    Ok(r)
}

/// Serves `/metrics` on `listener` until `shutdown` resolves, then lets the
/// scrapes in flight finish.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<OperatorState>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off a little.
                warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "metrics: too many connections, closing one");
            continue;
        };
        let state = state.clone();
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .keep_alive(true)
            .serve_connection(
                TokioIo::new(stream),
                hyper::service::service_fn(move |req| handle(state.clone(), req)),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "metrics: connection error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
