//! Prometheus metrics over HTTP/1.1: `GET /metrics` on `metrics_listen`
//! (default `127.0.0.1:4502`), in the OpenMetrics text format 1.0.0
//! (encoded by `prometheus-client`; Prometheus scrapes it natively).
//! Unauthenticated: keep it on loopback or behind a firewall.
//!
//! Metrics of the anchor (all prefixed `distsoc_anchor_`; a counter's
//! sample carries the `_total` suffix):
//!
//! | name | type | source |
//! | --- | --- | --- |
//! | `requests_total` | counter | requests handled (every outcome) |
//! | `requests_rate_limited_total` | counter | refused `rateLimited` |
//! | `requests_unauthorized_total` | counter | refused `unauthorized` |
//! | `requests_unavailable_total` | counter | answered `unavailable` |
//! | `request_duration_seconds{message}` | histogram | time from a decoded message to its answer, by message (`Enqueue`, `FetchWait`, …; 0.5 ms to 65 s) |
//! | `responses_total{message,outcome}` | counter | answers by message and outcome: `ok`, an error code (`rateLimited`, `unavailable`, …), or `abandoned` (the peer gave up on the stream) |
//! | `posts_quota_refused_total{quota}` | counter | deposits (PushPost) refused `quotaExceeded`, by `quota="author"` / `"depositor"` |
//! | `messages_enqueued_total` | counter | mailbox messages enqueued |
//! | `checkins_written_total` | counter | check-ins written (verified addresses, coalesced per identity) |
//! | `dialbacks_total`, `dialbacks_verified_total` | counter | address-verification dial-backs attempted / that reached the NodeId |
//! | `messages_delivered_total` | counter | mailbox messages delivered |
//! | `connections` | gauge | open QUIC connections |
//! | `mesh_connections{class}` | gauge | mesh connections by slot class: `social`, `wide`, `anchor`, `inbound` |
//! | `channels`, `queued_messages`, `queued_bytes`, `posts`, `checkins` | gauge | store sizes, cached for 5 s |
//! | `store_up` | gauge | 1 if the store sizes could be read, else 0 (sizes omitted) |
//! | `store_reachable` | gauge | PostgreSQL: 1 while the store's `LISTEN` connection is up (what gRPC health follows); SQLite: always 1 |
//! | `store_info{backend}` | gauge | always 1; `backend="sqlite"` or `"postgres"` |
//! | `store_write_queue`, `store_write_queue_capacity` | gauge | write requests waiting for the writer (SQLite writer thread, PostgreSQL write workers), and how many fit before callers wait |
//! | `store_pool_connections{state}`, `store_pool_max_connections`, `store_pool_waiting` | gauge | PostgreSQL only: pooled connections `in_use` / `idle`, `pool_size`, callers waiting for a connection |
//! | `draining` | gauge | 1 while draining |
//! | `banned_identities` | gauge | identities banned by the operator |
//! | `mailbox_ttl_seconds` | gauge | retention of new enqueues |
//! | `mailbox_ttl_overridden` | gauge | 1 while a retention set through the admin API overrides `mailbox_ttl_secs` |
//! | `uptime_seconds` | gauge | seconds since start |
//! | `build_info{version,protocol_version}` | gauge | always 1 |
//!
//! And the standard process metrics (no prefix; Linux, from `/proc`):
//! `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use distsoc_net::transport::{Handler, HandlerFuture, PeerInfo, ReplyFuture, RequestCtx};
use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::mesh::SlotClass;
use distsoc_protocol::messages::{wire, Message};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::operator::OperatorState;

/// The `Content-Type` of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Most simultaneous metrics connections (scrapers are few).
const MAX_CONNECTIONS: usize = 32;

/// The histogram buckets of `request_duration_seconds`: 0.5 ms doubling
/// to 65.5 s (a FetchWait holds up to a minute).
fn duration_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 18)
}

type OneLabel = [(&'static str, &'static str); 1];
type OutcomeLabels = [(&'static str, &'static str); 2];

/// Per-message request metrics, recorded by [`Instrumented`] around the
/// anchor's router. Cheap to share; the families are updated lock-free
/// once a label set exists.
#[derive(Debug, Clone)]
pub struct RequestMetrics {
    duration: Family<OneLabel, Histogram, fn() -> Histogram>,
    outcomes: Family<OutcomeLabels, Counter>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self {
            duration: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            outcomes: Family::default(),
        }
    }
}

impl RequestMetrics {
    /// Records one answered message: its time in the histogram of `code`,
    /// and one `outcome` (`"ok"`, an error code name, `"abandoned"`).
    pub fn record(&self, code: MessageCode, outcome: &'static str, elapsed: Duration) {
        self.duration
            .get_or_create(&[("message", code.name())])
            .observe(elapsed.as_secs_f64());
        self.outcomes
            .get_or_create(&[("message", code.name()), ("outcome", outcome)])
            .inc();
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "request_duration_seconds",
            "Time from a decoded message to its answer, by message",
            self.duration.clone(),
        );
        registry.register(
            "responses",
            "Answers by message and outcome (ok, an error code, or abandoned)",
            self.outcomes.clone(),
        );
    }
}

/// Records the outcome `abandoned` if the handler future is dropped before
/// it finished (the peer reset the stream).
struct InFlight<'a> {
    metrics: &'a RequestMetrics,
    code: MessageCode,
    started: Instant,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.metrics
                .record(self.code, "abandoned", self.started.elapsed());
        }
    }
}

/// A transport [`Handler`] that times every message `inner` handles and
/// counts its outcome in [`RequestMetrics`].
pub struct Instrumented<H> {
    inner: H,
    metrics: RequestMetrics,
}

impl<H: std::fmt::Debug> std::fmt::Debug for Instrumented<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<H: Handler> Instrumented<H> {
    /// Wraps `inner`; its requests are recorded in `metrics`.
    pub fn new(inner: H, metrics: RequestMetrics) -> Self {
        Self { inner, metrics }
    }
}

impl<H: Handler> Instrumented<H> {
    /// Runs `fut` (the inner handler's, for a message with `code`) and
    /// records it.
    fn record<'a, T: Send + 'a>(
        &'a self,
        code: MessageCode,
        fut: Pin<Box<dyn Future<Output = Result<T, wire::Error>> + Send + 'a>>,
    ) -> Pin<Box<dyn Future<Output = Result<T, wire::Error>> + Send + 'a>> {
        let in_flight = InFlight {
            metrics: &self.metrics,
            code,
            started: Instant::now(),
            done: false,
        };
        Box::pin(async move {
            // The guard moves into the future whole: dropped with it.
            let mut guard = in_flight;
            let result = fut.await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.code.name(),
            };
            guard.done = true;
            guard.metrics.record(code, outcome, guard.started.elapsed());
            result
        })
    }
}

impl<H: Handler> Handler for Instrumented<H> {
    fn handle<'a>(&'a self, ctx: RequestCtx, msg: Message) -> HandlerFuture<'a> {
        let code = msg.code();
        self.record(code, self.inner.handle(ctx, msg))
    }

    fn handle_reply<'a>(&'a self, ctx: RequestCtx, msg: Message) -> ReplyFuture<'a> {
        let code = msg.code();
        self.record(code, self.inner.handle_reply(ctx, msg))
    }

    fn on_connected(&self, info: Arc<PeerInfo>) {
        self.inner.on_connected(info);
    }

    fn on_disconnected(&self, info: Arc<PeerInfo>) {
        self.inner.on_disconnected(info);
    }

    fn admit(&self, peer: &NodeId, remote: std::net::SocketAddr) -> bool {
        self.inner.admit(peer, remote)
    }
}

/// Saturating `u64` → `i64` for gauges.
fn gauge(v: impl TryInto<i64>) -> ConstGauge {
    ConstGauge::new(v.try_into().unwrap_or(i64::MAX))
}

/// A gauge family with one label, one sample per value.
#[derive(Debug)]
struct Labelled {
    label: &'static str,
    samples: Vec<(&'static str, i64)>,
}

impl Labelled {
    fn family(self) -> Family<OneLabel, Gauge> {
        let f = Family::<OneLabel, Gauge>::default();
        for (value, n) in self.samples {
            f.get_or_create(&[(self.label, value)]).set(n);
        }
        f
    }
}

/// The standard `process_*` metrics, read from `/proc/self` at each
/// scrape (nothing when `/proc` is not there).
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What `/proc/self` tells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors (`None`: unlimited).
    pub max_fds: Option<u64>,
    /// When the process started, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// Reads `/proc/self/{stat,fd,limits}` and `/proc/stat`; `None` where
    /// there is no `/proc` (or it cannot be parsed).
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces and ')').
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): field n is f[n - 3].
        let field = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as u64;
        let utime = field(14)?;
        let stime = field(15)?;
        let start_ticks = field(22)?;
        let vsize = field(23)?;
        let rss_pages = field(24)?;
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())?;
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max open files"))?
                    .split_whitespace()
                    .nth(3)?
                    .parse::<u64>()
                    .ok()
            });
        Some(ProcessStats {
            cpu_seconds: (utime + stime) as f64 / ticks,
            resident_bytes: rss_pages.saturating_mul(page),
            virtual_bytes: vsize,
            open_fds,
            max_fds,
            start_time_seconds: boot_time as f64 + start_ticks as f64 / ticks,
        })
    }
}

fn encode_one(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let m = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(p) = ProcessStats::read() else {
            return Ok(());
        };
        encode_one(
            &mut encoder,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            &ConstCounter::new(p.cpu_seconds),
        )?;
        encode_one(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            &ConstGauge::new(p.resident_bytes),
        )?;
        encode_one(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            &ConstGauge::new(p.virtual_bytes),
        )?;
        encode_one(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors.",
            &ConstGauge::new(p.open_fds),
        )?;
        if let Some(max) = p.max_fds {
            encode_one(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                &ConstGauge::new(max),
            )?;
        }
        encode_one(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            &ConstGauge::new(p.start_time_seconds),
        )
    }
}

/// The exposition text.
pub(crate) async fn render(state: &OperatorState) -> String {
    let service = &state.service;
    let c = service.counters();
    let mut root = Registry::default();
    root.register_collector(Box::new(ProcessCollector));
    let r = root.sub_registry_with_prefix("distsoc_anchor");
    for (name, help, value) in [
        ("requests", "Requests handled (every outcome)", &c.requests),
        (
            "requests_rate_limited",
            "Requests refused with rateLimited",
            &c.rate_limited,
        ),
        (
            "requests_unauthorized",
            "Requests refused with unauthorized (including banned identities)",
            &c.unauthorized,
        ),
        (
            "requests_unavailable",
            "Requests answered unavailable (store down or draining)",
            &c.unavailable,
        ),
        (
            "messages_enqueued",
            "Mailbox messages enqueued",
            &c.enqueued,
        ),
        (
            "checkins_written",
            "Check-ins written to the store (verified addresses, coalesced per identity)",
            &c.checkins_written,
        ),
        (
            "dialbacks",
            "Dial-backs attempted to verify announced listen addresses",
            &c.dialbacks,
        ),
        (
            "dialbacks_verified",
            "Dial-backs that reached the announced NodeId",
            &c.dialbacks_verified,
        ),
        (
            "messages_delivered",
            "Mailbox messages delivered by Fetch/FetchWait",
            &c.delivered,
        ),
    ] {
        r.register(name, help, ConstCounter::new(value.load(Ordering::Relaxed)));
    }
    let quota = Family::<OneLabel, Counter>::default();
    quota
        .get_or_create(&[("quota", "author")])
        .inc_by(c.quota_refused_author.load(Ordering::Relaxed));
    quota
        .get_or_create(&[("quota", "depositor")])
        .inc_by(c.quota_refused_depositor.load(Ordering::Relaxed));
    r.register(
        "posts_quota_refused",
        "Deposits (PushPost) refused with quotaExceeded",
        quota,
    );
    state.requests.register(r);
    r.register(
        "connections",
        "Open QUIC connections",
        gauge(state.connections()),
    );
    let peers = service.mesh().peers();
    let classes = [
        SlotClass::Social,
        SlotClass::Wide,
        SlotClass::Anchor,
        SlotClass::Inbound,
    ];
    r.register(
        "mesh_connections",
        "Mesh connections by slot class",
        Labelled {
            label: "class",
            samples: classes
                .iter()
                .map(|&k| {
                    let n = peers.iter().filter(|p| p.class == k).count();
                    (k.as_str(), i64::try_from(n).unwrap_or(i64::MAX))
                })
                .collect(),
        }
        .family(),
    );
    match state.cached_stats().await {
        Ok(s) => {
            r.register("store_up", "1 if the store sizes could be read", gauge(1));
            for (name, help, value) in [
                ("channels", "DM channels", s.channels),
                (
                    "queued_messages",
                    "Queued mailbox messages (including expired ones not yet swept)",
                    s.queued_messages,
                ),
                (
                    "queued_bytes",
                    "Payload bytes of the queued mailbox messages",
                    s.queued_bytes,
                ),
                ("posts", "Stored posts", s.posts),
                ("checkins", "Nodes in the check-in table", s.checkins),
            ] {
                r.register(name, help, gauge(value));
            }
        }
        Err(e) => {
            debug!(error = %e, "metrics: store stats unavailable");
            r.register("store_up", "1 if the store sizes could be read", gauge(0));
        }
    }
    let store = service.store();
    r.register(
        "store_reachable",
        "1 while the database is reachable (PostgreSQL: the LISTEN connection is up)",
        gauge(i64::from(store.listener_connected().unwrap_or(true))),
    );
    let g = store.gauges();
    r.register(
        "store_info",
        "The store backend (always 1)",
        Labelled {
            label: "backend",
            samples: vec![(g.backend, 1)],
        }
        .family(),
    );
    r.register(
        "store_write_queue",
        "Write requests waiting for the store's writer",
        gauge(g.write_queue),
    );
    r.register(
        "store_write_queue_capacity",
        "Write requests the queue holds before callers wait",
        gauge(g.write_queue_capacity),
    );
    if let Some(pool) = g.pool {
        r.register(
            "store_pool_connections",
            "Pooled PostgreSQL connections, in use or idle",
            Labelled {
                label: "state",
                samples: vec![
                    (
                        "in_use",
                        i64::try_from(pool.size.saturating_sub(pool.available)).unwrap_or(0),
                    ),
                    ("idle", i64::try_from(pool.available).unwrap_or(0)),
                ],
            }
            .family(),
        );
        r.register(
            "store_pool_max_connections",
            "Most pooled PostgreSQL connections (pool_size)",
            gauge(pool.max_size),
        );
        r.register(
            "store_pool_waiting",
            "Callers waiting for a pooled PostgreSQL connection",
            gauge(pool.waiting),
        );
    }
    r.register(
        "draining",
        "1 while the anchor refuses new requests",
        gauge(i64::from(service.is_draining())),
    );
    r.register(
        "banned_identities",
        "Identities banned by the operator",
        gauge(service.banned().len()),
    );
    r.register(
        "mailbox_ttl_seconds",
        "Retention of newly enqueued mailbox messages",
        gauge(service.mailbox_ttl().as_secs()),
    );
    r.register(
        "mailbox_ttl_overridden",
        "1 while a retention set through the admin API overrides mailbox_ttl_secs",
        gauge(i64::from(service.mailbox_ttl_overridden())),
    );
    r.register(
        "uptime_seconds",
        "Seconds since the anchor started",
        gauge(state.started.elapsed().as_secs()),
    );
    let build = Family::<Vec<(&'static str, String)>, Gauge>::default();
    build
        .get_or_create(&vec![
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("protocol_version", PROTOCOL_VERSION.to_string()),
        ])
        .set(1);
    r.register("build_info", "Build information (always 1)", build);
    let mut out = String::with_capacity(8192);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &root) {
        warn!(error = %e, "metrics: encoding failed");
    }
    out
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
