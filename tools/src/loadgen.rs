//! `distsoc loadgen`: many concurrent QUIC clients against an anchor, bounded
//! in count and time, reporting throughput and latency per operation.
//!
//! # Shape
//!
//! * Every client is its own Ed25519 identity (`--seed` makes them
//!   reproducible) with its own QUIC endpoint ([`Transport`]) and connection
//!   to the target. A client endpoint serves nothing: its handler refuses
//!   every message with `Error(unknownMessage)`.
//! * The load phase lasts `--duration` seconds or until `--requests` requests
//!   were issued, whichever comes first. Then requests still in flight get a
//!   short grace period (2 s; a held `FetchWait` is abandoned at once), the
//!   queues are drained (mailbox scenarios, at most `--drain-timeout`) and the
//!   endpoints close. Every phase is bounded, so the run always ends.
//! * **Rate limits.** A refusal carrying `retryAfterMs` (`rateLimited`, and
//!   `unavailable` when it says when to retry) pauses *that client* for that
//!   long before its next request. Refusals are counted by wire `ErrorCode`
//!   and the report says loudly when the results are shaped by the anchor's
//!   rate limit (50 requests/s per identity **and per IP** by default: all
//!   clients of one loadgen share an IP).
//!
//! # Scenarios
//!
//! * `mailbox`: clients pair up (client `i` ↔ `i ^ 1`); the lower of each pair
//!   creates the channel, then both loop *Enqueue to the partner* + *Fetch own
//!   queue* with `ackThrough` acknowledging everything fetched before. Every
//!   delivered payload is checked: it must carry this run's id, come from the
//!   partner through the pair's channel, have been enqueued to us, and its
//!   filler must be intact (else `mismatch`). After the load phase the queues
//!   are drained and the report compares enqueued with delivered: the run
//!   is consistent only if delivery was **exactly once** — no acknowledged
//!   message missing, no message stored twice (delivered under two message
//!   ids). An `Enqueue` answered with an error that does not guarantee
//!   nothing was done (`unavailable`, `internal`), or not answered at all,
//!   has an unknown outcome and is retried with the same `clientMessageId`
//!   (up to 5 attempts), as `schema/README.md` §9 requires of clients.
//! * `fetchwait`: in each pair the lower client holds a `FetchWait` (timeout
//!   `--fetch-wait-ms`) on its queue and the other enqueues to it; a sender
//!   keeps at most `--concurrency-per-client` messages undelivered, so with 1
//!   it is a ping-pong and the waiter is normally parked when a message
//!   arrives. The payload carries the send time; the waiter records
//!   `wake` = receipt − send (same machine, same clock).
//! * `ingest`: each client pushes signed public posts (`PushPost` on a
//!   bidirectional stream, answered `Ack`).
//! * `mixed`: paired clients pick each operation at random: 35 % Enqueue,
//!   30 % Fetch, 10 % short `FetchWait` (250 ms), 25 % PushPost; an unpaired
//!   client only pushes posts.
//!
//! With an odd `--clients`, the last client has no partner: it idles in
//! `mailbox`/`fetchwait` (reported as idle) and pushes posts in `mixed`.
//!
//! # Payload format (mailbox scenarios)
//!
//! `"DSLG" | 1u8 | 3 zero bytes | run_id u64 | sender u32 | recipient u32 |
//! seq u64 | sent_unix_us u64 | filler`, little-endian; the filler is a
//! deterministic function of the header (not of the send time). Messages of
//! an earlier run (same `--seed`, same channel) are counted as `stale` and
//! acknowledged.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use distsoc_net::transport::{
    Handler, HandlerFuture, Peer, RequestCtx, RequestError, Transport, TransportConfig,
    TransportError,
};
use distsoc_node::compose::compose;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ChannelId, ConnectString, Host, NodeId};
use distsoc_protocol::limits::{
    MAX_MAILBOX_PAYLOAD_BYTES, PROTOCOL_VERSION, RATE_LIMIT_PER_SECOND,
};
use distsoc_protocol::messages::content::MAX_POST_TEXT_BYTES;
use distsoc_protocol::messages::mailbox::{
    CreateChannel, Enqueue, Fetch, FetchResponse, FetchWait, FetchWaitResponse, MailboxMessage,
};
use distsoc_protocol::messages::social::PushPost;
use distsoc_protocol::messages::wire;
use distsoc_protocol::messages::Message;
use distsoc_protocol::sign::SigningKey;
use indicatif::{ProgressBar, ProgressStyle};
use rand_chacha::ChaCha8Rng;
use rand_core::{OsRng, RngCore, SeedableRng};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Most clients in one run.
pub const MAX_CLIENTS: usize = 4096;
/// Most requests in flight per client.
pub const MAX_CONCURRENCY_PER_CLIENT: usize = 64;
/// Length of the loadgen header at the start of every mailbox payload; the
/// smallest `--payload-bytes`.
pub const PAYLOAD_HEADER_LEN: usize = 40;
/// How long a `FetchWait` is held in the `mixed` scenario.
pub const MIXED_FETCH_WAIT: Duration = Duration::from_millis(250);

/// Attempts of one `Enqueue` whose outcome stays unknown (the first one
/// included), each with the same `clientMessageId`.
const ENQUEUE_ATTEMPTS: u32 = 5;

/// Pause after an error that gives no `retryAfterMs`, in setup and drain
/// loops (the load loops do not back off: each attempt costs a round trip).
const ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// Pause when a rate-limit refusal says `retryAfterMs = 0`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_millis(100);
/// Pause after a failed reconnection.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);
/// Most connection attempts in progress at once.
const CONNECT_PARALLELISM: usize = 64;
/// Progress bar refresh interval.
const PROGRESS_TICK: Duration = Duration::from_millis(200);

const MAGIC: [u8; 4] = *b"DSLG";
const PAYLOAD_FORMAT: u8 = 1;

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Pairs: Enqueue to the partner + Fetch own queue with ackThrough.
    Mailbox,
    /// Pairs: one holds FetchWait, the other enqueues; enqueue→wake latency.
    Fetchwait,
    /// Each client pushes signed public posts (PushPost, Ack).
    Ingest,
    /// Pairs pick Enqueue / Fetch / FetchWait / PushPost at random.
    Mixed,
}

impl Scenario {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Mailbox => "mailbox",
            Scenario::Fetchwait => "fetchwait",
            Scenario::Ingest => "ingest",
            Scenario::Mixed => "mixed",
        }
    }

    fn uses_mailbox(self) -> bool {
        self != Scenario::Ingest
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings of one run. [`Options::new`] gives the CLI defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// The anchor to load.
    pub target: ConnectString,
    /// `fetchwait` only: a second anchor on the same database where the
    /// waiting clients hold their FetchWait (the senders use `target`), to
    /// measure the wake across anchor processes.
    pub wait_target: Option<ConnectString>,
    /// Number of clients, each with its own identity and connection.
    pub clients: usize,
    /// Longest load phase.
    pub duration: Duration,
    /// Stop the load phase after this many requests (all clients together;
    /// channel setup and draining are not counted).
    pub requests: Option<u64>,
    /// What the clients do.
    pub scenario: Scenario,
    /// Mailbox payload size (at least [`PAYLOAD_HEADER_LEN`]); post text size
    /// in `ingest` (capped at the 64 KiB post text limit).
    pub payload_bytes: usize,
    /// Requests in flight per client.
    pub concurrency_per_client: usize,
    /// Seed of the client identities (and of `mixed`'s choices); random
    /// identities when `None`.
    pub seed: Option<u64>,
    /// `timeoutMs` of the held FetchWait in the `fetchwait` scenario.
    pub fetch_wait_timeout: Duration,
    /// Timeout of one request (FetchWait: its hold time plus this).
    pub request_timeout: Duration,
    /// How long requests in flight when the load phase ends may still take.
    pub grace: Duration,
    /// Longest drain of the queues after the load phase.
    pub drain_timeout: Duration,
    /// Bound of the QUIC handshake and, separately, of the Hello exchange.
    pub connect_timeout: Duration,
    /// Show a progress bar on stderr (only drawn on a terminal).
    pub progress: bool,
}

impl Options {
    /// The CLI defaults against `target`: 16 clients, 10 s, `mailbox`,
    /// 1024-byte payloads, one request in flight per client, progress off.
    pub fn new(target: ConnectString) -> Self {
        Self {
            target,
            wait_target: None,
            clients: 16,
            duration: Duration::from_secs(10),
            requests: None,
            scenario: Scenario::Mailbox,
            payload_bytes: 1024,
            concurrency_per_client: 1,
            seed: None,
            fetch_wait_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            progress: false,
        }
    }

    /// Checks the bounds of every setting.
    pub fn validate(&self) -> Result<(), LoadgenError> {
        let bad = |s: String| Err(LoadgenError::Options(s));
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return bad(format!("--clients must be in 1..={MAX_CLIENTS}"));
        }
        if self.concurrency_per_client == 0
            || self.concurrency_per_client > MAX_CONCURRENCY_PER_CLIENT
        {
            return bad(format!(
                "--concurrency-per-client must be in 1..={MAX_CONCURRENCY_PER_CLIENT}"
            ));
        }
        if self.duration.is_zero() {
            return bad("--duration must be positive".into());
        }
        if self.requests == Some(0) {
            return bad("--requests must be positive".into());
        }
        if self.scenario.uses_mailbox()
            && !(PAYLOAD_HEADER_LEN..=MAX_MAILBOX_PAYLOAD_BYTES).contains(&self.payload_bytes)
        {
            return bad(format!(
                "--payload-bytes must be in {PAYLOAD_HEADER_LEN}..={MAX_MAILBOX_PAYLOAD_BYTES} \
                 (the loadgen header takes {PAYLOAD_HEADER_LEN} bytes)"
            ));
        }
        if self.scenario == Scenario::Ingest && self.payload_bytes == 0 {
            return bad("--payload-bytes must be positive".into());
        }
        if self.fetch_wait_timeout.as_millis()
            > u128::from(distsoc_protocol::limits::MAX_FETCH_WAIT_MS)
        {
            return bad("--fetch-wait-ms must be at most 60000".into());
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return bad("timeouts must be positive".into());
        }
        if self.wait_target.is_some() && self.scenario != Scenario::Fetchwait {
            return bad("--wait-target only applies to --scenario fetchwait".into());
        }
        if matches!(self.scenario, Scenario::Mailbox | Scenario::Fetchwait) && self.clients < 2 {
            return bad(format!(
                "scenario {} needs at least 2 clients (they work in pairs)",
                self.scenario
            ));
        }
        Ok(())
    }
}

/// `distsoc loadgen` command-line arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// The anchor to load: NodeId@host:port.
    #[arg(long, value_name = "NODEID@HOST:PORT")]
    pub target: ConnectString,
    /// fetchwait only: a second anchor sharing the target's PostgreSQL
    /// database where the waiters hold their FetchWait (cross-process wake).
    #[arg(long, value_name = "NODEID@HOST:PORT")]
    pub wait_target: Option<ConnectString>,
    /// Number of clients; each is its own Ed25519 identity with its own QUIC
    /// connection.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Longest load phase, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many requests (all clients together), if earlier than
    /// --duration.
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    /// What the clients do.
    #[arg(long, value_enum, default_value_t = Scenario::Mailbox)]
    pub scenario: Scenario,
    /// Mailbox payload size in bytes (post text size for ingest).
    #[arg(long, default_value_t = 1024)]
    pub payload_bytes: usize,
    /// Requests in flight per client.
    #[arg(long, default_value_t = 1)]
    pub concurrency_per_client: usize,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Seed for reproducible client identities.
    #[arg(long)]
    pub seed: Option<u64>,
    /// FetchWait timeoutMs in the fetchwait scenario.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub fetch_wait_ms: u64,
    /// Timeout of one request, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub request_timeout: f64,
    /// Longest drain of the queues after the load phase, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub drain_timeout: f64,
    /// Do not show the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

fn secs(name: &str, v: f64) -> Result<Duration, LoadgenError> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| *d <= Duration::from_secs(365 * 24 * 3600))
        .ok_or_else(|| LoadgenError::Options(format!("--{name} must be a number of seconds >= 0")))
}

impl LoadgenArgs {
    /// The run's [`Options`].
    pub fn options(&self) -> Result<Options, LoadgenError> {
        let mut o = Options::new(self.target.clone());
        o.wait_target = self.wait_target.clone();
        o.clients = self.clients;
        o.duration = secs("duration", self.duration)?;
        o.requests = self.requests;
        o.scenario = self.scenario;
        o.payload_bytes = self.payload_bytes;
        o.concurrency_per_client = self.concurrency_per_client;
        o.seed = self.seed;
        o.fetch_wait_timeout = Duration::from_millis(self.fetch_wait_ms);
        o.request_timeout = secs("request-timeout", self.request_timeout)?;
        o.drain_timeout = secs("drain-timeout", self.drain_timeout)?;
        o.progress = !self.no_progress;
        o.validate()?;
        Ok(o)
    }
}

/// Why a run could not be made (failed requests are counted in the report,
/// not returned here).
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// An option is out of bounds.
    #[error("invalid option: {0}")]
    Options(String),
    /// The target's host name could not be resolved.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// A client endpoint could not be bound.
    #[error(
        "cannot bind a client endpoint (every client has its own UDP socket: \
         check `ulimit -n` for many clients): {0}"
    )]
    Bind(#[source] TransportError),
    /// No client could connect.
    #[error("no client could connect to {target}: {first_error}")]
    NoConnection {
        /// The target.
        target: String,
        /// The first connection error.
        first_error: String,
    },
    /// The runtime could not be started or the report not written.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The run completed but mailbox deliveries do not add up (the report
    /// has been printed).
    #[error("inconsistent results: {0}")]
    Inconsistent(String),
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

/// Why the load phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// `--duration` elapsed.
    Duration,
    /// `--requests` were issued.
    Requests,
    /// Interrupted (Ctrl-C).
    Interrupted,
}

impl StopReason {
    fn from_u8(v: u8) -> Self {
        match v {
            STOP_REQUESTS => StopReason::Requests,
            STOP_INTERRUPTED => StopReason::Interrupted,
            _ => StopReason::Duration,
        }
    }

    fn name(self) -> &'static str {
        match self {
            StopReason::Duration => "duration",
            StopReason::Requests => "requests",
            StopReason::Interrupted => "interrupted",
        }
    }
}

/// What the target said about itself in the Hello exchange.
#[derive(Debug, Clone, Serialize)]
pub struct AnchorInfo {
    /// The target's NodeId (hex).
    pub node_id: String,
    /// Its implementation name.
    pub agent: String,
    /// Negotiated protocol version.
    pub version: u16,
    /// Roles it announced.
    pub roles: Vec<String>,
    /// Capability tokens it announced.
    pub capabilities: Vec<String>,
    /// Announced requests/s per identity and per IP (0 = protocol default).
    pub rate_limit_per_second: u32,
    /// Announced longest FetchWait hold, ms (0 = default).
    pub max_fetch_wait_ms: u32,
}

/// One row of the report: an operation.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    /// `connect`, `create_channel`, `enqueue`, `fetch`, `fetch_wait`,
    /// `push_post`, `delivery` (enqueue→receipt by Fetch), `wake`
    /// (enqueue→receipt by FetchWait) or `drain_fetch`.
    pub op: String,
    /// Successful requests (for `delivery`/`wake`: messages received).
    pub ok: u64,
    /// Failed requests (and payload mismatches for `delivery`/`wake`).
    pub errors: u64,
    /// Errors by wire `ErrorCode` name (`rateLimited`, `unauthorized`, ...) or
    /// local kind: `timeout`, `connectionClosed`, `streamFailed`, `badReply`,
    /// `unexpectedReply`, `encodeFailed`, `composeFailed`, `connectFailed`,
    /// `mismatch`.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Requests in flight when their phase ended, abandoned (not errors).
    pub cancelled: u64,
    /// `ok` per second of the load phase; none for `connect` and
    /// `drain_fetch`.
    pub throughput_per_s: Option<f64>,
    /// Median latency of the successful requests, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// Largest latency, ms.
    pub max_ms: Option<f64>,
    /// Mean latency, ms.
    pub mean_ms: Option<f64>,
}

/// Enqueued versus delivered, after the drain (mailbox scenarios).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailboxReport {
    /// Enqueues acknowledged with `EnqueueResponse`.
    pub enqueued: u64,
    /// Enqueues whose outcome stayed unknown after every retry (timeout,
    /// connection lost, `unavailable`/`internal`, abandoned at the end):
    /// they may or may not have been stored.
    pub enqueue_unknown: u64,
    /// Enqueues sent again with the same `clientMessageId` after an
    /// unknown outcome.
    pub enqueue_retries: u64,
    /// Distinct messages of this run received by their recipient.
    pub delivered: u64,
    /// Of `delivered`, received while draining after the load phase.
    pub delivered_during_drain: u64,
    /// Of `delivered`, messages whose enqueue outcome was unknown.
    pub delivered_unconfirmed: u64,
    /// Acknowledged enqueues never delivered.
    pub missing: u64,
    /// Messages stored more than once: one message (sender, sequence,
    /// `clientMessageId`) delivered under two message ids. Exactly-once
    /// is violated (the anchor did not deduplicate a retry).
    pub duplicates: u64,
    /// The same stored message delivered again (same message id:
    /// at-least-once redelivery after a lost acknowledgement; not an error).
    pub redelivered: u64,
    /// Delivered payloads that were not enqueued to the recipient (wrong
    /// sender, channel, recipient, sequence, size or filler).
    pub mismatched: u64,
    /// Messages of an earlier run found in the channels (acknowledged).
    pub stale: u64,
    /// Whether every queue was fetched empty before the drain timeout.
    pub drain_complete: bool,
}

/// How much the anchor's rate limit shaped the run.
#[derive(Debug, Clone, Serialize)]
pub struct RateLimitReport {
    /// Whether any request was refused with `rateLimited`.
    pub limited: bool,
    /// Requests refused with `rateLimited`.
    pub refused: u64,
    /// All requests sent (every phase).
    pub requests: u64,
    /// `refused / requests`.
    pub fraction: f64,
    /// Time clients spent paused honouring `retryAfterMs` (per client, the
    /// union of its pauses; summed over clients), seconds.
    pub paused_s: f64,
    /// The limit the anchor announced (or the protocol default, 50).
    pub per_second: u32,
    /// The warning printed with the table, when limited.
    pub warning: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The target connect string.
    pub target: String,
    /// The scenario.
    pub scenario: Scenario,
    /// Clients asked for.
    pub clients: usize,
    /// Clients whose connection was established.
    pub clients_connected: usize,
    /// Connected clients that had nothing to do (no connected partner).
    pub clients_idle: usize,
    /// Requests in flight per client.
    pub concurrency_per_client: usize,
    /// Payload size.
    pub payload_bytes: usize,
    /// `--duration`, seconds.
    pub duration_limit_s: f64,
    /// `--requests`.
    pub request_limit: Option<u64>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// This run's id (in every payload), hex.
    pub run_id: String,
    /// Why the load phase ended.
    pub stopped_by: StopReason,
    /// Length of the load phase including its grace period, seconds (the
    /// denominator of the throughputs).
    pub elapsed_s: f64,
    /// Length of the drain, seconds.
    pub drain_s: f64,
    /// Requests issued in the load phase (counted against `--requests`).
    pub load_requests: u64,
    /// What the target announced.
    pub anchor: Option<AnchorInfo>,
    /// One entry per operation seen.
    pub ops: Vec<OpReport>,
    /// FetchWaits answered empty (timed out at the anchor).
    pub fetch_wait_empty: u64,
    /// Enqueued versus delivered (mailbox scenarios).
    pub mailbox: Option<MailboxReport>,
    /// Rate limiting.
    pub rate_limit: RateLimitReport,
    /// Mailbox: exactly once — every acknowledged message delivered, none
    /// stored twice, nothing mismatched — and the drain completed (and no
    /// run panicked); always true for ingest without mismatches.
    pub consistent: bool,
    /// Anything else worth knowing.
    pub notes: Vec<String>,
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

impl Report {
    /// The row of `op`, if it was seen.
    pub fn op(&self, op: &str) -> Option<&OpReport> {
        self.ops.iter().find(|o| o.op == op)
    }

    /// The plain-text table printed on stdout.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "distsoc loadgen: scenario {} against {}",
            self.scenario, self.target
        );
        let _ = writeln!(
            s,
            "{} clients ({} connected, {} idle) x {} in flight, payload {} B; \
             load phase {:.2} s (stopped by {}), drain {:.2} s, {} load requests",
            self.clients,
            self.clients_connected,
            self.clients_idle,
            self.concurrency_per_client,
            self.payload_bytes,
            self.elapsed_s,
            self.stopped_by.name(),
            self.drain_s,
            self.load_requests,
        );
        if let Some(a) = &self.anchor {
            let _ = writeln!(
                s,
                "target: {} protocol {}, roles [{}], capabilities [{}], \
                 announced rate limit {}",
                if a.agent.is_empty() { "?" } else { &a.agent },
                a.version,
                a.roles.join(","),
                a.capabilities.join(","),
                if a.rate_limit_per_second == 0 {
                    format!("default ({RATE_LIMIT_PER_SECOND}/s)")
                } else {
                    format!("{}/s", a.rate_limit_per_second)
                },
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<14} {:>9} {:>7} {:>9} {:>10} {:>9} {:>9} {:>9}  errors by code",
            "op", "ok", "errors", "cancelled", "ops/s", "p50 ms", "p99 ms", "max ms"
        );
        for o in &self.ops {
            let codes = if o.errors_by_code.is_empty() {
                "-".to_string()
            } else {
                o.errors_by_code
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                s,
                "{:<14} {:>9} {:>7} {:>9} {:>10} {:>9} {:>9} {:>9}  {}",
                o.op,
                o.ok,
                o.errors,
                o.cancelled,
                o.throughput_per_s
                    .map_or_else(|| "-".to_string(), |t| format!("{t:.1}")),
                opt_ms(o.p50_ms),
                opt_ms(o.p99_ms),
                opt_ms(o.max_ms),
                codes
            );
        }
        let _ = writeln!(s);
        if self.fetch_wait_empty > 0 {
            let _ = writeln!(
                s,
                "fetch_wait: {} answered empty (held until timeoutMs)",
                self.fetch_wait_empty
            );
        }
        if let Some(m) = &self.mailbox {
            let _ = writeln!(
                s,
                "mailbox: enqueued {} (+{} unknown outcome, {} retries), delivered {} ({} while \
                 draining, {} unconfirmed), missing {}, duplicates {}, redelivered {}, \
                 mismatched {}, stale {}, drain {}",
                m.enqueued,
                m.enqueue_unknown,
                m.enqueue_retries,
                m.delivered,
                m.delivered_during_drain,
                m.delivered_unconfirmed,
                m.missing,
                m.duplicates,
                m.redelivered,
                m.mismatched,
                m.stale,
                if m.drain_complete {
                    "complete"
                } else {
                    "INCOMPLETE"
                },
            );
        }
        let _ = writeln!(
            s,
            "result: {}",
            if self.consistent {
                "consistent"
            } else {
                "INCONSISTENT"
            }
        );
        match &self.rate_limit.warning {
            Some(w) => {
                for line in w.lines() {
                    let _ = writeln!(s, "*** {line}");
                }
            }
            None => {
                let _ = writeln!(
                    s,
                    "rate limit: none of {} requests was refused with rateLimited",
                    self.rate_limit.requests
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Op {
    Connect,
    CreateChannel,
    Enqueue,
    Fetch,
    FetchWait,
    PushPost,
    Delivery,
    Wake,
    DrainFetch,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Connect => "connect",
            Op::CreateChannel => "create_channel",
            Op::Enqueue => "enqueue",
            Op::Fetch => "fetch",
            Op::FetchWait => "fetch_wait",
            Op::PushPost => "push_post",
            Op::Delivery => "delivery",
            Op::Wake => "wake",
            Op::DrainFetch => "drain_fetch",
        }
    }

    /// Whether the row counts requests sent (not connections or messages).
    fn is_request(self) -> bool {
        !matches!(self, Op::Connect | Op::Delivery | Op::Wake)
    }
}

#[derive(Debug, Default)]
struct OpStats {
    ok: u64,
    lat_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
    cancelled: u64,
}

#[derive(Debug, Default)]
struct Stats {
    ops: BTreeMap<Op, OpStats>,
    fetch_wait_empty: u64,
    enqueue_retries: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Stats {
    fn ok(&mut self, op: Op, latency: Duration) {
        self.ok_us(op, micros(latency));
    }

    fn ok_us(&mut self, op: Op, us: u64) {
        let s = self.ops.entry(op).or_default();
        s.ok += 1;
        s.lat_us.push(us);
    }

    fn err(&mut self, op: Op, code: &str) {
        *self
            .ops
            .entry(op)
            .or_default()
            .errors
            .entry(code.to_string())
            .or_default() += 1;
    }

    fn cancelled(&mut self, op: Op) {
        self.ops.entry(op).or_default().cancelled += 1;
    }

    fn merge(&mut self, other: Stats) {
        for (op, o) in other.ops {
            let s = self.ops.entry(op).or_default();
            s.ok += o.ok;
            s.lat_us.extend(o.lat_us);
            s.cancelled += o.cancelled;
            for (k, v) in o.errors {
                *s.errors.entry(k).or_default() += v;
            }
        }
        self.fetch_wait_empty += other.fetch_wait_empty;
        self.enqueue_retries += other.enqueue_retries;
    }
}

/// The `p`-th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn op_report(op: Op, mut s: OpStats, phase: Option<Duration>) -> OpReport {
    s.lat_us.sort_unstable();
    let mean = (!s.lat_us.is_empty())
        .then(|| s.lat_us.iter().map(|v| *v as f64).sum::<f64>() / s.lat_us.len() as f64 / 1000.0);
    let throughput = phase.map(|d| {
        let secs = d.as_secs_f64();
        if secs > 0.0 {
            s.ok as f64 / secs
        } else {
            0.0
        }
    });
    OpReport {
        op: op.name().to_string(),
        ok: s.ok,
        errors: s.errors.values().sum(),
        errors_by_code: s.errors,
        cancelled: s.cancelled,
        throughput_per_s: throughput,
        p50_ms: percentile(&s.lat_us, 50.0).map(us_to_ms),
        p99_ms: percentile(&s.lat_us, 99.0).map(us_to_ms),
        max_ms: s.lat_us.last().copied().map(us_to_ms),
        mean_ms: mean,
    }
}

/// Counters for the progress bar.
#[derive(Debug, Default)]
struct Live {
    ok: AtomicU64,
    errors: AtomicU64,
    rate_limited: AtomicU64,
}

// ---------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    run_id: u64,
    sender: u32,
    recipient: u32,
    seq: u64,
    sent_us: u64,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fill(h: &Header, out: &mut [u8]) {
    let mut state = h.run_id
        ^ (u64::from(h.sender) << 32 | u64::from(h.recipient)).rotate_left(17)
        ^ h.seq.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    for chunk in out.chunks_mut(8) {
        let v = splitmix(&mut state).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// A payload of `len` (≥ [`PAYLOAD_HEADER_LEN`]) bytes for `h`.
fn make_payload(h: &Header, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(PAYLOAD_HEADER_LEN)];
    p[..4].copy_from_slice(&MAGIC);
    p[4] = PAYLOAD_FORMAT;
    p[8..16].copy_from_slice(&h.run_id.to_le_bytes());
    p[16..20].copy_from_slice(&h.sender.to_le_bytes());
    p[20..24].copy_from_slice(&h.recipient.to_le_bytes());
    p[24..32].copy_from_slice(&h.seq.to_le_bytes());
    p[32..40].copy_from_slice(&h.sent_us.to_le_bytes());
    fill(h, &mut p[PAYLOAD_HEADER_LEN..]);
    p
}

/// Sets the send time of a payload made by [`make_payload`].
fn stamp(p: &mut [u8], sent_us: u64) {
    p[32..40].copy_from_slice(&sent_us.to_le_bytes());
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// The header of a loadgen payload whose filler is intact.
fn parse_payload(p: &[u8]) -> Option<Header> {
    if p.len() < PAYLOAD_HEADER_LEN || p[..4] != MAGIC || p[4] != PAYLOAD_FORMAT {
        return None;
    }
    let h = Header {
        run_id: le_u64(&p[8..]),
        sender: le_u32(&p[16..]),
        recipient: le_u32(&p[20..]),
        seq: le_u64(&p[24..]),
        sent_us: le_u64(&p[32..]),
    };
    let mut expect = vec![0u8; p.len() - PAYLOAD_HEADER_LEN];
    fill(&h, &mut expect);
    (expect == p[PAYLOAD_HEADER_LEN..]).then_some(h)
}

fn client_message_id(run_id: u64, sender: usize, seq: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    let mut state = run_id ^ (sender as u64).rotate_left(40) ^ seq.wrapping_mul(31);
    id[..8].copy_from_slice(&splitmix(&mut state).to_le_bytes());
    id[8..].copy_from_slice(&splitmix(&mut state).to_le_bytes());
    id
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, micros)
}

fn now_ms() -> u64 {
    now_us() / 1000
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// A client endpoint serves nothing.
struct Refuse;

impl Handler for Refuse {
    fn handle<'a>(&'a self, _ctx: RequestCtx, _msg: Message) -> HandlerFuture<'a> {
        Box::pin(async {
            Err(wire::Error::new(
                ErrorCode::UnknownMessage,
                0,
                "loadgen client serves nothing",
            ))
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Client {
    /// Index among all clients (`--clients`), as in payloads.
    idx: usize,
    key: SigningKey,
    id: NodeId,
    transport: Transport,
    /// The anchor this client talks to (and reconnects to).
    target: (NodeId, SocketAddr),
    peer: Mutex<Peer>,
    /// No request before this instant (retryAfterMs).
    paused_until: Mutex<Option<Instant>>,
    /// Time paused honouring `retryAfterMs`, µs.
    retry_paused_us: AtomicU64,
    reconnecting: tokio::sync::Mutex<()>,
}

impl Client {
    fn peer(&self) -> Peer {
        lock(&self.peer).clone()
    }

    /// No request before `d` from now; `retry`: the pause honours a
    /// `retryAfterMs` (counted in the report).
    fn pause(&self, d: Duration, retry: bool) {
        let now = Instant::now();
        let until = now + d;
        let mut p = lock(&self.paused_until);
        let from = match *p {
            Some(prev) if prev > now => prev,
            _ => now,
        };
        if until > from {
            *p = Some(until);
            if retry {
                self.retry_paused_us
                    .fetch_add(micros(until - from), Ordering::Relaxed);
            }
        }
    }
}

/// Messages addressed to one client.
#[derive(Debug, Default)]
struct Book {
    attempted: HashSet<u64>,
    confirmed: HashSet<u64>,
    /// Sequence → the message id it was first delivered under.
    delivered: HashMap<u64, u64>,
    drained: u64,
    duplicates: u64,
    redelivered: u64,
    mismatched: u64,
    stale: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Idle,
    /// Creates the pair's channel (the lower index); waits in `fetchwait`.
    PairLow,
    /// The other member; sends in `fetchwait`.
    PairHigh,
    Ingest,
}

struct Slot {
    client: Arc<Client>,
    role: Role,
    /// The partner's slot.
    partner: Option<usize>,
    /// The pair's channel (shared by both members).
    channel: Option<Arc<watch::Sender<Option<ChannelId>>>>,
    /// Sequence of the messages this client sends.
    next_seq: AtomicU64,
    /// `ackThrough` of the own queue; serializes its fetches.
    inbox: tokio::sync::Mutex<u64>,
    /// Messages addressed to this client.
    book: Mutex<Book>,
    /// `fetchwait`: messages on their way to this client (its sender takes a
    /// permit per message, the waiter returns it on delivery).
    in_flight: Semaphore,
}

const STOP_NONE: u8 = 0;
const STOP_DURATION: u8 = 1;
const STOP_REQUESTS: u8 = 2;
const STOP_INTERRUPTED: u8 = 3;

struct Run {
    opts: Options,
    run_id: u64,
    slots: Vec<Slot>,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    stop_reason: AtomicU8,
    interrupt_tx: watch::Sender<bool>,
    interrupt_rx: watch::Receiver<bool>,
    issued: AtomicU64,
    live: Live,
    draining: AtomicBool,
}

/// When an operation is abandoned.
#[derive(Debug, Clone, Copy)]
enum Cutoff {
    /// When the load phase ends (held FetchWaits).
    AtStop,
    /// A grace period after the load phase ends.
    Grace,
    /// At this instant, or on interruption (drain).
    At(Instant),
}

// Like `Message` itself: one per request, matched at once, never stored.
#[allow(clippy::large_enum_variant)]
enum Reply {
    Ok(Message, Duration),
    /// A typed refusal (`Error`) with its code.
    Refused(ErrorCode),
    Failed,
    Cancelled,
    /// Not sent: the phase ended while the client was paused.
    NotSent,
}

enum Transmit {
    Request(Duration),
    PushAcked,
}

fn local_kind(e: &RequestError) -> &'static str {
    match e {
        RequestError::Timeout(_) => "timeout",
        RequestError::Closed(_) => "connectionClosed",
        RequestError::Stream(_) => "streamFailed",
        RequestError::BadFrame(_) | RequestError::BadReply(_) => "badReply",
        RequestError::UnexpectedReply { .. } => "unexpectedReply",
        RequestError::WrongKind { .. } | RequestError::Encode(_) => "encodeFailed",
        RequestError::Remote(_) => "remote",
    }
}

impl Run {
    fn is_over(&self) -> bool {
        *self.stop_rx.borrow()
    }

    fn stop(&self, reason: u8) {
        let _ = self.stop_reason.compare_exchange(
            STOP_NONE,
            reason,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.stop_tx.send_replace(true);
    }

    async fn load_over(&self) {
        let mut rx = self.stop_rx.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    async fn interrupted(&self) {
        let mut rx = self.interrupt_rx.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    async fn cut(&self, cutoff: Cutoff) {
        match cutoff {
            Cutoff::AtStop => self.load_over().await,
            Cutoff::Grace => {
                self.load_over().await;
                tokio::time::sleep(self.opts.grace).await;
            }
            Cutoff::At(t) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(t.into()) => {}
                    _ = self.interrupted() => {}
                }
            }
        }
    }

    /// Takes one request from the `--requests` budget; false once the load
    /// phase is over.
    fn take(&self) -> bool {
        if self.is_over() {
            return false;
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        match self.opts.requests {
            Some(limit) if n >= limit => {
                self.issued.fetch_sub(1, Ordering::SeqCst);
                self.stop(STOP_REQUESTS);
                false
            }
            Some(limit) if n + 1 == limit => {
                // The last one: end the load phase; this request still runs
                // within the grace period.
                self.stop(STOP_REQUESTS);
                true
            }
            _ => true,
        }
    }

    fn channel(&self, slot: usize) -> Option<ChannelId> {
        self.slots[slot].channel.as_ref().and_then(|c| *c.borrow())
    }
}

struct Worker {
    run: Arc<Run>,
    stats: Stats,
    rng: ChaCha8Rng,
}

impl Worker {
    fn new(run: Arc<Run>, stream: u64) -> Self {
        let seed = match run.opts.seed {
            Some(s) => s ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            None => OsRng.next_u64(),
        };
        Self {
            run,
            stats: Stats::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Waits out the client's pause (which other tasks of the client may
    /// extend meanwhile); false if the phase ended first.
    async fn wait_pause(&self, client: &Client, cutoff: Cutoff) -> bool {
        let cut = match cutoff {
            Cutoff::Grace | Cutoff::AtStop => Cutoff::AtStop,
            at => at,
        };
        loop {
            let until = *lock(&client.paused_until);
            let Some(until) = until.filter(|u| *u > Instant::now()) else {
                return true;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = self.run.cut(cut) => return false,
            }
        }
    }

    /// Sends one request from `slot`'s client and counts refusals and
    /// failures; the caller counts a success (after checking its type).
    async fn request(
        &mut self,
        slot: usize,
        op: Op,
        msg: Message,
        send: Transmit,
        cutoff: Cutoff,
    ) -> Reply {
        let run = self.run.clone();
        let client = run.slots[slot].client.clone();
        if !self.wait_pause(&client, cutoff).await {
            return Reply::NotSent;
        }
        let peer = client.peer();
        let start = Instant::now();
        let fut = async {
            match send {
                Transmit::Request(timeout) => peer.send_message(msg, timeout).await,
                Transmit::PushAcked => peer.send_message(msg, peer.request_timeout()).await,
            }
        };
        let result = tokio::select! {
            biased;
            r = fut => Some(r),
            _ = run.cut(cutoff) => None,
        };
        let latency = start.elapsed();
        let live = &run.live;
        match result {
            None => {
                self.stats.cancelled(op);
                Reply::Cancelled
            }
            Some(Ok(Message::Error(e))) | Some(Err(RequestError::Remote(e))) => {
                live.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.err(op, e.code.name());
                let retry = Duration::from_millis(u64::from(e.retry_after_ms));
                match e.code {
                    ErrorCode::RateLimited => {
                        live.rate_limited.fetch_add(1, Ordering::Relaxed);
                        client.pause(
                            if retry.is_zero() {
                                DEFAULT_RETRY_AFTER
                            } else {
                                retry
                            },
                            true,
                        );
                    }
                    ErrorCode::Unavailable if !retry.is_zero() => client.pause(retry, true),
                    _ => {}
                }
                Reply::Refused(e.code)
            }
            Some(Ok(reply)) => {
                live.ok.fetch_add(1, Ordering::Relaxed);
                Reply::Ok(reply, latency)
            }
            Some(Err(e)) => {
                live.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.err(op, local_kind(&e));
                if matches!(e, RequestError::Closed(_)) {
                    self.reconnect(&client, cutoff).await;
                }
                Reply::Failed
            }
        }
    }

    fn unexpected(&mut self, op: Op) {
        self.run.live.ok.fetch_sub(1, Ordering::Relaxed);
        self.run.live.errors.fetch_add(1, Ordering::Relaxed);
        self.stats.err(op, "unexpectedReply");
    }

    /// Replaces the client's closed connection (at most one attempt at a
    /// time per client; abandoned at the phase's cutoff).
    async fn reconnect(&mut self, client: &Client, cutoff: Cutoff) {
        let run = self.run.clone();
        let _guard = tokio::select! {
            g = client.reconnecting.lock() => g,
            _ = run.cut(cutoff) => return,
        };
        if !client.peer().is_closed() {
            return;
        }
        let start = Instant::now();
        // connect() bounds the handshake and Hello by hello_timeout each.
        let connect = client.transport.connect(client.target.0, client.target.1);
        let result = tokio::select! {
            r = connect => r,
            _ = run.cut(cutoff) => return,
        };
        match result {
            Ok(peer) => {
                self.stats.ok(Op::Connect, start.elapsed());
                *lock(&client.peer) = peer;
            }
            Err(_) => {
                self.stats.err(Op::Connect, "connectFailed");
                client.pause(RECONNECT_BACKOFF, false);
            }
        }
    }

    /// The lower member creates the pair's channel; both wait for it. None
    /// if the load phase ended first.
    async fn channel(&mut self, slot: usize, creator: bool) -> Option<ChannelId> {
        let run = self.run.clone();
        let s = &run.slots[slot];
        let partner = s.partner?;
        let tx = s.channel.clone()?;
        if creator {
            let me = s.client.id;
            let peer_id = run.slots[partner].client.id;
            while !run.is_over() {
                let msg = Message::CreateChannel(CreateChannel {
                    version: PROTOCOL_VERSION,
                    peer: peer_id,
                });
                match self
                    .request(
                        slot,
                        Op::CreateChannel,
                        msg,
                        Transmit::Request(run.opts.request_timeout),
                        Cutoff::Grace,
                    )
                    .await
                {
                    Reply::Ok(Message::CreateChannelResponse(r), lat) => {
                        if r.other(&me) == Some(peer_id) {
                            self.stats.ok(Op::CreateChannel, lat);
                            tx.send_replace(Some(r.channel_id));
                            return Some(r.channel_id);
                        }
                        self.run.live.ok.fetch_sub(1, Ordering::Relaxed);
                        self.stats.err(Op::CreateChannel, "mismatch");
                        s.client.pause(ERROR_BACKOFF, false);
                    }
                    Reply::Ok(_, _) => {
                        self.unexpected(Op::CreateChannel);
                        s.client.pause(ERROR_BACKOFF, false);
                    }
                    Reply::Refused(_) | Reply::Failed => s.client.pause(ERROR_BACKOFF, false),
                    Reply::Cancelled | Reply::NotSent => return None,
                }
            }
            None
        } else {
            let mut rx = tx.subscribe();
            tokio::select! {
                r = rx.wait_for(Option::is_some) => r.ok().and_then(|c| *c),
                _ = run.load_over() => None,
            }
        }
    }

    /// Enqueues one message from `slot` to its partner. True if the message
    /// may be on its way (acknowledged or unknown outcome).
    async fn enqueue(&mut self, slot: usize, channel: ChannelId) -> bool {
        let run = self.run.clone();
        let s = &run.slots[slot];
        let Some(partner) = s.partner else {
            return false;
        };
        let to = &run.slots[partner];
        let seq = s.next_seq.fetch_add(1, Ordering::Relaxed);
        let header = Header {
            run_id: run.run_id,
            sender: s.client.idx as u32,
            recipient: to.client.idx as u32,
            seq,
            sent_us: 0,
        };
        let mut payload = make_payload(&header, run.opts.payload_bytes);
        lock(&to.book).attempted.insert(seq);
        stamp(&mut payload, now_us());
        let msg = Enqueue {
            version: PROTOCOL_VERSION,
            channel_id: Some(channel),
            recipient: to.client.id,
            payload,
            client_message_id: Some(client_message_id(run.run_id, s.client.idx, seq)),
        };
        // An error that does not say "nothing was done" (`unavailable`,
        // `internal`), a timeout or a lost connection leaves the outcome
        // unknown: retry the same message (same clientMessageId, which the
        // anchor deduplicates) until it is answered (schema/README.md §9).
        let mut unknown = false;
        for attempt in 0..ENQUEUE_ATTEMPTS {
            if attempt > 0 {
                self.stats.enqueue_retries += 1;
            }
            let reply = self
                .request(
                    slot,
                    Op::Enqueue,
                    Message::Enqueue(msg.clone()),
                    Transmit::Request(run.opts.request_timeout),
                    Cutoff::Grace,
                )
                .await;
            match reply {
                Reply::Ok(Message::EnqueueResponse(_), lat) => {
                    self.stats.ok(Op::Enqueue, lat);
                    lock(&to.book).confirmed.insert(seq);
                    return true;
                }
                Reply::Ok(_, _) => {
                    self.unexpected(Op::Enqueue);
                    return true;
                }
                Reply::Refused(code) if code.nothing_done() => {
                    if !unknown {
                        // Certainly not stored: a later delivery would be a
                        // mismatch.
                        lock(&to.book).attempted.remove(&seq);
                        return false;
                    }
                    // This attempt was refused (e.g. `rateLimited`, and the
                    // client is paused for its retryAfterMs), but an earlier
                    // one may have been stored: keep asking.
                }
                Reply::Refused(_) | Reply::Failed => {
                    unknown = true;
                    if attempt + 1 < ENQUEUE_ATTEMPTS {
                        s.client.pause(ERROR_BACKOFF, false);
                    }
                }
                Reply::Cancelled => return true,
                Reply::NotSent => {
                    if !unknown {
                        lock(&to.book).attempted.remove(&seq);
                    }
                    return unknown;
                }
            }
        }
        // Still unknown: it may be delivered (not a mismatch) or not (not
        // missing); reported as `enqueue_unknown`.
        true
    }

    /// Fetches `slot`'s own queue (FetchWait when `wait` is set),
    /// acknowledging what was fetched before, and records the deliveries.
    async fn fetch(
        &mut self,
        slot: usize,
        channel: ChannelId,
        wait: Option<Duration>,
        op: Op,
        cutoff: Cutoff,
        draining: bool,
    ) -> Option<FetchResponse> {
        let run = self.run.clone();
        let s = &run.slots[slot];
        let mut ack = tokio::select! {
            g = s.inbox.lock() => g,
            _ = run.cut(cutoff) => return None,
        };
        if !draining && run.is_over() {
            return None;
        }
        let (msg, timeout) = match wait {
            Some(w) => (
                Message::FetchWait(FetchWait {
                    version: PROTOCOL_VERSION,
                    channel_id: Some(channel),
                    ack_through: *ack,
                    max_messages: 0,
                    max_bytes: 0,
                    timeout_ms: u32::try_from(w.as_millis()).unwrap_or(u32::MAX),
                }),
                w + run.opts.request_timeout,
            ),
            None => (
                Message::Fetch(Fetch {
                    version: PROTOCOL_VERSION,
                    channel_id: Some(channel),
                    ack_through: *ack,
                    max_messages: 0,
                    max_bytes: 0,
                }),
                run.opts.request_timeout,
            ),
        };
        let reply = self
            .request(slot, op, msg, Transmit::Request(timeout), cutoff)
            .await;
        let (r, lat) = match (wait.is_some(), reply) {
            (false, Reply::Ok(Message::FetchResponse(r), lat)) => (r, lat),
            (true, Reply::Ok(Message::FetchWaitResponse(FetchWaitResponse(r)), lat)) => (r, lat),
            (_, Reply::Ok(_, _)) => {
                self.unexpected(op);
                return None;
            }
            _ => return None,
        };
        self.stats.ok(op, lat);
        if wait.is_some() && r.messages.is_empty() {
            self.stats.fetch_wait_empty += 1;
        }
        let via = if wait.is_some() {
            Op::Wake
        } else {
            Op::Delivery
        };
        for m in &r.messages {
            self.deliver(slot, channel, m, via, draining);
            *ack = (*ack).max(m.message_id);
        }
        Some(r)
    }

    /// Checks one delivered message and records it.
    fn deliver(
        &mut self,
        slot: usize,
        channel: ChannelId,
        m: &MailboxMessage,
        via: Op,
        draining: bool,
    ) {
        let now = now_us();
        let run = self.run.clone();
        let s = &run.slots[slot];
        let Some(partner) = s.partner else { return };
        let from = &run.slots[partner];
        let mut book = lock(&s.book);
        let header = parse_payload(&m.payload);
        if let Some(h) = header {
            if h.run_id != run.run_id {
                book.stale += 1;
                return;
            }
        }
        let seq = match header {
            Some(h)
                if m.sender == from.client.id
                    && m.channel_id == Some(channel)
                    && h.sender as usize == from.client.idx
                    && h.recipient as usize == s.client.idx
                    && m.payload.len() == run.opts.payload_bytes
                    && book.attempted.contains(&h.seq) =>
            {
                h.seq
            }
            _ => {
                book.mismatched += 1;
                drop(book);
                self.stats.err(via, "mismatch");
                return;
            }
        };
        match book.delivered.get(&seq) {
            Some(id) if *id == m.message_id => {
                book.redelivered += 1;
                return;
            }
            Some(_) => {
                // A second stored copy of one message.
                book.duplicates += 1;
                drop(book);
                self.stats.err(via, "duplicate");
                return;
            }
            None => {
                book.delivered.insert(seq, m.message_id);
            }
        }
        if draining {
            book.drained += 1;
            return;
        }
        drop(book);
        if let Some(h) = header {
            self.stats.ok_us(via, now.saturating_sub(h.sent_us));
        }
        if run.opts.scenario == Scenario::Fetchwait {
            s.in_flight.add_permits(1);
        }
    }

    async fn push_post(&mut self, slot: usize, seq: u64) {
        let run = self.run.clone();
        let client = run.slots[slot].client.clone();
        let head = format!(
            "distsoc loadgen run {:016x} client {} post {} ",
            run.run_id, client.idx, seq
        );
        let len = run
            .opts
            .payload_bytes
            .clamp(head.len(), MAX_POST_TEXT_BYTES);
        let mut text = head;
        text.extend(std::iter::repeat_n('x', len.saturating_sub(text.len())));
        let post = match compose(&client.key, now_ms(), text, Vec::new(), None, &mut OsRng) {
            Ok(p) => p,
            Err(_) => {
                self.stats.err(Op::PushPost, "composeFailed");
                return;
            }
        };
        let msg = Message::PushPost(PushPost {
            version: PROTOCOL_VERSION,
            post,
            recent: None,
        });
        match self
            .request(slot, Op::PushPost, msg, Transmit::PushAcked, Cutoff::Grace)
            .await
        {
            Reply::Ok(Message::Ack(_), lat) => self.stats.ok(Op::PushPost, lat),
            Reply::Ok(_, _) => self.unexpected(Op::PushPost),
            _ => {}
        }
    }

    // --- scenario loops ----------------------------------------------------

    async fn mailbox_loop(&mut self, slot: usize, setup: bool) {
        let creator = setup && self.run.slots[slot].role == Role::PairLow;
        let Some(channel) = self.channel(slot, creator).await else {
            return;
        };
        loop {
            if !self.run.take() {
                break;
            }
            self.enqueue(slot, channel).await;
            if !self.run.take() {
                break;
            }
            self.fetch(slot, channel, None, Op::Fetch, Cutoff::Grace, false)
                .await;
        }
    }

    async fn waiter_loop(&mut self, slot: usize) {
        let Some(channel) = self.channel(slot, true).await else {
            return;
        };
        let wait = self.run.opts.fetch_wait_timeout;
        while self.run.take() {
            self.fetch(
                slot,
                channel,
                Some(wait),
                Op::FetchWait,
                Cutoff::AtStop,
                false,
            )
            .await;
        }
    }

    async fn sender_loop(&mut self, slot: usize) {
        let run = self.run.clone();
        let Some(channel) = self.channel(slot, false).await else {
            return;
        };
        let Some(partner) = run.slots[slot].partner else {
            return;
        };
        let permits = &run.slots[partner].in_flight;
        loop {
            let permit = tokio::select! {
                p = permits.acquire() => p,
                _ = run.load_over() => break,
            };
            match permit {
                Ok(p) => p.forget(),
                Err(_) => break,
            }
            if !run.take() {
                break;
            }
            if !self.enqueue(slot, channel).await {
                permits.add_permits(1);
            }
        }
    }

    async fn ingest_loop(&mut self, slot: usize) {
        let mut seq = 0u64;
        while self.run.take() {
            self.push_post(slot, seq).await;
            seq += 1;
        }
    }

    async fn mixed_loop(&mut self, slot: usize, setup: bool) {
        let creator = setup && self.run.slots[slot].role == Role::PairLow;
        let Some(channel) = self.channel(slot, creator).await else {
            return;
        };
        let mut seq = 0u64;
        while self.run.take() {
            match self.rng.next_u32() % 100 {
                0..35 => {
                    self.enqueue(slot, channel).await;
                }
                35..65 => {
                    self.fetch(slot, channel, None, Op::Fetch, Cutoff::Grace, false)
                        .await;
                }
                65..75 => {
                    self.fetch(
                        slot,
                        channel,
                        Some(MIXED_FETCH_WAIT),
                        Op::FetchWait,
                        Cutoff::AtStop,
                        false,
                    )
                    .await;
                }
                _ => {
                    self.push_post(slot, seq).await;
                    seq += 1;
                }
            }
        }
    }

    /// Fetches `slot`'s queue until it is empty; true if it got there before
    /// `until`.
    async fn drain(&mut self, slot: usize, until: Instant) -> bool {
        let Some(channel) = self.run.channel(slot) else {
            return true;
        };
        while Instant::now() < until && !*self.run.interrupt_rx.borrow() {
            match self
                .fetch(slot, channel, None, Op::DrainFetch, Cutoff::At(until), true)
                .await
            {
                Some(r) if r.messages.is_empty() && !r.more => return true,
                Some(_) => {}
                None => {
                    let client = &self.run.slots[slot].client;
                    if lock(&client.paused_until).is_none_or(|p| p <= Instant::now()) {
                        client.pause(ERROR_BACKOFF, false);
                    }
                }
            }
        }
        false
    }
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

fn identities(n: usize, seed: Option<u64>) -> Vec<SigningKey> {
    match seed {
        Some(seed) => {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            (0..n)
                .map(|_| {
                    let mut s = [0u8; 32];
                    rng.fill_bytes(&mut s);
                    SigningKey::from_seed(&s)
                })
                .collect()
        }
        None => (0..n).map(|_| SigningKey::generate(&mut OsRng)).collect(),
    }
}

async fn resolve(target: &ConnectString) -> Result<SocketAddr, LoadgenError> {
    match &target.host {
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, target.port)),
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), target.port))
            .await
            .map_err(|source| LoadgenError::Resolve {
                host: name.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| LoadgenError::Resolve {
                host: name.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            }),
    }
}

fn client_config(opts: &Options, target: SocketAddr) -> TransportConfig {
    let unspecified = match target.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    TransportConfig {
        listen: SocketAddr::new(unspecified, 0),
        agent: concat!("distsoc-loadgen/", env!("CARGO_PKG_VERSION")).to_string(),
        hello_timeout: opts.connect_timeout,
        request_timeout: opts.request_timeout,
        keep_alive: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30),
        max_connections: 4,
        max_concurrent_bidi: 4,
        max_concurrent_uni: 4,
        close_timeout: Duration::from_secs(1),
        ..TransportConfig::default()
    }
}

fn progress_bar(opts: &Options) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let (len, unit) = match opts.requests {
        Some(n) => (n, "requests"),
        None => (
            u64::try_from(opts.duration.as_millis()).unwrap_or(u64::MAX),
            "ms",
        ),
    };
    let bar = ProgressBar::new(len);
    let template = format!("{{elapsed:>4}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn anchor_info(peer: &Peer) -> AnchorInfo {
    let info = peer.info();
    AnchorInfo {
        node_id: info.node_id.to_hex(),
        agent: info.agent.clone(),
        version: info.version,
        roles: info
            .roles
            .iter()
            .map(|r| format!("{r:?}").to_lowercase())
            .collect(),
        capabilities: info.capabilities.clone(),
        rate_limit_per_second: u32::from(info.limits.rate_limit_per_second),
        max_fetch_wait_ms: info.limits.max_fetch_wait_ms,
    }
}

/// Runs the load generator until the load phase ends by duration or request
/// count, then drains and reports.
pub async fn run(opts: Options) -> Result<Report, LoadgenError> {
    run_until(opts, std::future::pending()).await
}

/// [`run`], ending the load phase early (and skipping the drain) when
/// `interrupt` completes (e.g. on Ctrl-C).
pub async fn run_until(
    opts: Options,
    interrupt: impl Future<Output = ()> + Send + 'static,
) -> Result<Report, LoadgenError> {
    opts.validate()?;
    let target_addr = resolve(&opts.target).await?;
    let target_id = opts.target.node_id;
    let wait_target = match &opts.wait_target {
        Some(w) => Some((w.node_id, resolve(w).await?)),
        None => None,
    };
    // With --wait-target the waiters (even indices: the low end of each
    // pair) talk to the second anchor.
    let target_of = |idx: usize| match wait_target {
        Some(w) if idx.is_multiple_of(2) => w,
        _ => (target_id, target_addr),
    };
    let keys = identities(opts.clients, opts.seed);
    let handler: Arc<dyn Handler> = Arc::new(Refuse);
    let mut notes = Vec::new();
    if let Some(w) = &opts.wait_target {
        notes.push(format!(
            "waiters hold FetchWait on {w}; senders enqueue on {}",
            opts.target
        ));
    }

    // Connect every client (its own endpoint), a bounded number at a time.
    let mut transports = Vec::with_capacity(keys.len());
    for (idx, key) in keys.iter().enumerate() {
        let t = Transport::bind(key, client_config(&opts, target_of(idx).1), handler.clone())
            .map_err(LoadgenError::Bind)?;
        transports.push(t);
    }
    let bar = progress_bar(&opts);
    bar.set_message(format!("connecting {} clients", opts.clients));
    let mut setup_stats = Stats::default();
    let limit = Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let mut connecting = JoinSet::new();
    for (idx, (key, transport)) in keys.into_iter().zip(transports).enumerate() {
        let limit = limit.clone();
        let target = target_of(idx);
        connecting.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let start = Instant::now();
            let r = transport.connect(target.0, target.1).await;
            (idx, key, transport, target, r, start.elapsed())
        });
    }
    let mut connected: Vec<Option<Arc<Client>>> = (0..opts.clients).map(|_| None).collect();
    let mut first_error = None;
    let mut anchor = None;
    while let Some(joined) = connecting.join_next().await {
        let Ok((idx, key, transport, target, result, latency)) = joined else {
            continue;
        };
        match result {
            Ok(peer) => {
                setup_stats.ok(Op::Connect, latency);
                if anchor.is_none() {
                    anchor = Some(anchor_info(&peer));
                }
                connected[idx] = Some(Arc::new(Client {
                    idx,
                    id: NodeId(key.public()),
                    key,
                    transport,
                    target,
                    peer: Mutex::new(peer),
                    paused_until: Mutex::new(None),
                    retry_paused_us: AtomicU64::new(0),
                    reconnecting: tokio::sync::Mutex::new(()),
                }));
            }
            Err(e) => {
                setup_stats.err(Op::Connect, "connectFailed");
                first_error.get_or_insert_with(|| e.to_string());
                // Dropping closes the endpoint at once.
                drop(transport);
            }
        }
    }
    let clients_connected = connected.iter().filter(|c| c.is_some()).count();
    if clients_connected == 0 {
        bar.finish_and_clear();
        return Err(LoadgenError::NoConnection {
            target: opts.target.to_string(),
            first_error: first_error.unwrap_or_default(),
        });
    }
    if let Some(e) = &first_error {
        notes.push(format!(
            "{} of {} clients could not connect (first error: {e})",
            opts.clients - clients_connected,
            opts.clients
        ));
    }

    // Roles and slots.
    let mut slot_of: Vec<Option<usize>> = vec![None; opts.clients];
    let mut slots = Vec::with_capacity(clients_connected);
    for (idx, c) in connected.iter().enumerate() {
        let Some(client) = c else { continue };
        let partner_idx = idx ^ 1;
        let partner_ok = connected.get(partner_idx).is_some_and(Option::is_some);
        let role = match opts.scenario {
            Scenario::Ingest => Role::Ingest,
            _ if partner_ok && idx < partner_idx => Role::PairLow,
            _ if partner_ok => Role::PairHigh,
            Scenario::Mixed => Role::Ingest,
            _ => Role::Idle,
        };
        slot_of[idx] = Some(slots.len());
        slots.push(Slot {
            client: client.clone(),
            role,
            partner: None,
            channel: None,
            next_seq: AtomicU64::new(0),
            inbox: tokio::sync::Mutex::new(0),
            book: Mutex::new(Book::default()),
            in_flight: Semaphore::new(opts.concurrency_per_client),
        });
    }
    for i in 0..slots.len() {
        if matches!(slots[i].role, Role::PairLow) {
            let j = slot_of[slots[i].client.idx ^ 1].unwrap_or(i);
            let channel = Arc::new(watch::channel(None).0);
            slots[i].partner = Some(j);
            slots[j].partner = Some(i);
            slots[i].channel = Some(channel.clone());
            slots[j].channel = Some(channel);
        }
    }
    let clients_idle = slots.iter().filter(|s| s.role == Role::Idle).count();
    if clients_idle > 0 {
        notes.push(format!(
            "{clients_idle} client(s) idle: no connected partner in scenario {}",
            opts.scenario
        ));
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let (interrupt_tx, interrupt_rx) = watch::channel(false);
    let run = Arc::new(Run {
        run_id: OsRng.next_u64(),
        slots,
        stop_tx,
        stop_rx,
        stop_reason: AtomicU8::new(STOP_NONE),
        interrupt_tx,
        interrupt_rx,
        issued: AtomicU64::new(0),
        live: Live::default(),
        draining: AtomicBool::new(false),
        opts,
    });

    // Load phase.
    let started = Instant::now();
    let deadline = started + run.opts.duration;
    let mut background = JoinSet::new();
    {
        let run = run.clone();
        background.spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            run.stop(STOP_DURATION);
        });
    }
    {
        let run = run.clone();
        background.spawn(async move {
            interrupt.await;
            run.interrupt_tx.send_replace(true);
            run.stop(STOP_INTERRUPTED);
        });
    }
    {
        let run = run.clone();
        let bar = bar.clone();
        background.spawn(async move {
            let mut tick = tokio::time::interval(PROGRESS_TICK);
            loop {
                tick.tick().await;
                let ok = run.live.ok.load(Ordering::Relaxed);
                let errors = run.live.errors.load(Ordering::Relaxed);
                let limited = run.live.rate_limited.load(Ordering::Relaxed);
                if run.draining.load(Ordering::Relaxed) {
                    bar.set_message(format!("draining... ok {ok} err {errors}"));
                    continue;
                }
                let secs = started.elapsed().as_secs_f64().max(0.001);
                let pos = match run.opts.requests {
                    Some(_) => run.issued.load(Ordering::Relaxed),
                    None => u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                };
                bar.set_position(pos);
                bar.set_message(format!(
                    "ok {ok} ({:.0}/s)  err {errors}  rateLimited {limited}",
                    ok as f64 / secs
                ));
            }
        });
    }

    let mut workers = JoinSet::new();
    let mut stream = 0u64;
    for slot in 0..run.slots.len() {
        let role = run.slots[slot].role;
        let tasks = match (run.opts.scenario, role) {
            (_, Role::Idle) => 0,
            (Scenario::Fetchwait, Role::PairLow) => 1,
            _ => run.opts.concurrency_per_client,
        };
        for k in 0..tasks {
            stream += 1;
            let mut w = Worker::new(run.clone(), stream);
            let scenario = run.opts.scenario;
            workers.spawn(async move {
                let setup = k == 0;
                match (scenario, role) {
                    (_, Role::Ingest) => w.ingest_loop(slot).await,
                    (Scenario::Fetchwait, Role::PairLow) => w.waiter_loop(slot).await,
                    (Scenario::Fetchwait, _) => w.sender_loop(slot).await,
                    (Scenario::Mixed, _) => w.mixed_loop(slot, setup).await,
                    _ => w.mailbox_loop(slot, setup).await,
                }
                w.stats
            });
        }
    }
    let mut load_stats = Stats::default();
    let mut panicked = 0usize;
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(s) => load_stats.merge(s),
            Err(_) => panicked += 1,
        }
    }
    // Every worker ends only once the load phase is over.
    run.stop(STOP_DURATION);
    let load_elapsed = started.elapsed();
    let stopped_by = StopReason::from_u8(run.stop_reason.load(Ordering::SeqCst));

    // Drain.
    run.draining.store(true, Ordering::Relaxed);
    let drain_start = Instant::now();
    let drain_until = drain_start + run.opts.drain_timeout;
    let mut drain_stats = Stats::default();
    let mut drain_complete = true;
    let interrupted = *run.interrupt_rx.borrow();
    if run.opts.scenario.uses_mailbox() {
        if interrupted {
            drain_complete = false;
            notes.push("interrupted: queues not drained".into());
        } else {
            let mut drains = JoinSet::new();
            for slot in 0..run.slots.len() {
                if run.slots[slot].partner.is_none() {
                    continue;
                }
                stream += 1;
                let mut w = Worker::new(run.clone(), stream);
                drains.spawn(async move {
                    let complete = w.drain(slot, drain_until).await;
                    (w.stats, complete)
                });
            }
            while let Some(joined) = drains.join_next().await {
                match joined {
                    Ok((s, complete)) => {
                        drain_stats.merge(s);
                        drain_complete &= complete;
                    }
                    Err(_) => {
                        panicked += 1;
                        drain_complete = false;
                    }
                }
            }
        }
    }
    let drain_elapsed = drain_start.elapsed();
    background.abort_all();
    bar.finish_and_clear();

    // Close every endpoint.
    let mut closing = JoinSet::new();
    for slot in &run.slots {
        let client = slot.client.clone();
        closing.spawn(async move { client.transport.close().await });
    }
    while closing.join_next().await.is_some() {}

    if panicked > 0 {
        notes.push(format!("{panicked} worker task(s) panicked"));
    }
    Ok(build_report(
        &run,
        Phases {
            setup: setup_stats,
            load: load_stats,
            drain: drain_stats,
            load_elapsed,
            drain_elapsed,
            drain_complete,
            stopped_by,
        },
        clients_connected,
        clients_idle,
        anchor,
        notes,
        panicked == 0,
    ))
}

struct Phases {
    setup: Stats,
    load: Stats,
    drain: Stats,
    load_elapsed: Duration,
    drain_elapsed: Duration,
    drain_complete: bool,
    stopped_by: StopReason,
}

fn build_report(
    run: &Run,
    phases: Phases,
    clients_connected: usize,
    clients_idle: usize,
    anchor: Option<AnchorInfo>,
    mut notes: Vec<String>,
    no_panic: bool,
) -> Report {
    let opts = &run.opts;
    let mut all = Stats::default();
    all.merge(phases.setup);
    all.merge(phases.load);
    all.merge(phases.drain);

    let mut requests = 0u64;
    let mut load_requests = 0u64;
    let mut refused = 0u64;
    let mut mismatch_errors = 0u64;
    let mut load_ok = 0u64;
    let mut ops = Vec::new();
    for (op, s) in std::mem::take(&mut all.ops) {
        let sent = s.ok + s.errors.values().sum::<u64>() + s.cancelled;
        if op.is_request() {
            requests += sent;
            refused += s
                .errors
                .get(ErrorCode::RateLimited.name())
                .copied()
                .unwrap_or(0);
        }
        if matches!(op, Op::Enqueue | Op::Fetch | Op::FetchWait | Op::PushPost) {
            load_requests += sent;
            load_ok += s.ok;
        }
        mismatch_errors += s.errors.get("mismatch").copied().unwrap_or(0);
        // Throughput is for the load phase; connections and the drain have
        // none.
        let phase = match op {
            Op::Connect | Op::DrainFetch => None,
            _ => Some(phases.load_elapsed),
        };
        ops.push(op_report(op, s, phase));
    }

    if load_ok == 0 {
        notes.push("no request of the load phase succeeded: see the errors by code".into());
    }
    if opts.scenario.uses_mailbox()
        && anchor
            .as_ref()
            .is_some_and(|a| !a.capabilities.iter().any(|c| c == "mailbox/1"))
    {
        notes
            .push("the target does not announce the mailbox/1 capability: is it an anchor?".into());
    }
    let mailbox = opts.scenario.uses_mailbox().then(|| {
        let mut m = MailboxReport {
            drain_complete: phases.drain_complete,
            enqueue_retries: all.enqueue_retries,
            ..MailboxReport::default()
        };
        for slot in &run.slots {
            let b = lock(&slot.book);
            m.enqueued += b.confirmed.len() as u64;
            m.enqueue_unknown += b.attempted.difference(&b.confirmed).count() as u64;
            m.delivered += b.delivered.len() as u64;
            m.delivered_during_drain += b.drained;
            m.delivered_unconfirmed += b
                .delivered
                .keys()
                .filter(|seq| !b.confirmed.contains(seq))
                .count() as u64;
            m.missing += b
                .confirmed
                .iter()
                .filter(|seq| !b.delivered.contains_key(seq))
                .count() as u64;
            m.duplicates += b.duplicates;
            m.redelivered += b.redelivered;
            m.mismatched += b.mismatched;
            m.stale += b.stale;
        }
        m
    });
    if let Some(m) = &mailbox {
        if m.stale > 0 {
            notes.push(format!(
                "{} message(s) of an earlier run were found in the channels and acknowledged",
                m.stale
            ));
        }
        if m.enqueue_unknown > 0 {
            notes.push(format!(
                "{} enqueue(s) have an unknown outcome (timeout, lost connection or abandoned \
                 at the end); {} of them were delivered",
                m.enqueue_unknown, m.delivered_unconfirmed
            ));
        }
    }
    let consistent = no_panic
        && mismatch_errors == 0
        && mailbox.as_ref().is_none_or(|m| {
            m.missing == 0 && m.duplicates == 0 && m.mismatched == 0 && m.drain_complete
        });

    let per_second = anchor
        .as_ref()
        .map(|a| a.rate_limit_per_second)
        .filter(|r| *r > 0)
        .unwrap_or(RATE_LIMIT_PER_SECOND);
    let fraction = if requests > 0 {
        refused as f64 / requests as f64
    } else {
        0.0
    };
    let paused_s = run
        .slots
        .iter()
        .map(|s| s.client.retry_paused_us.load(Ordering::Relaxed))
        .sum::<u64>() as f64
        / 1e6;
    let warning = (refused > 0).then(|| {
        format!(
            "RATE LIMITED: {refused} of {requests} requests ({:.1}%) were refused with \
             rateLimited; the clients spent {paused_s:.1} client-seconds paused honouring \
             retryAfterMs.\n\
             The throughputs above are shaped by the anchor's rate limit ({per_second} requests/s \
             per identity AND per IP; all {clients_connected} clients share this host's IP), \
             not by its capacity.",
            fraction * 100.0
        )
    });

    Report {
        target: opts.target.to_string(),
        scenario: opts.scenario,
        clients: opts.clients,
        clients_connected,
        clients_idle,
        concurrency_per_client: opts.concurrency_per_client,
        payload_bytes: opts.payload_bytes,
        duration_limit_s: opts.duration.as_secs_f64(),
        request_limit: opts.requests,
        seed: opts.seed,
        run_id: format!("{:016x}", run.run_id),
        stopped_by: phases.stopped_by,
        elapsed_s: phases.load_elapsed.as_secs_f64(),
        drain_s: phases.drain_elapsed.as_secs_f64(),
        load_requests,
        anchor,
        ops,
        fetch_wait_empty: all.fetch_wait_empty,
        mailbox,
        rate_limit: RateLimitReport {
            limited: refused > 0,
            refused,
            requests,
            fraction,
            paused_s,
            per_second,
            warning,
        },
        consistent,
        notes,
    }
}

/// `distsoc loadgen`: runs, prints the table on stdout (the progress bar goes
/// to stderr), writes the JSON report if asked. Fails after printing when the
/// mailbox results are inconsistent.
pub fn main(args: LoadgenArgs) -> Result<(), LoadgenError> {
    let opts = args.options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| LoadgenError::Io {
            what: "cannot start the tokio runtime".into(),
            source,
        })?;
    let report = runtime.block_on(run_until(opts, async {
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).map_err(|e| LoadgenError::Io {
            what: "cannot encode the report".into(),
            source: e.into(),
        })?;
        std::fs::write(path, json).map_err(|source| LoadgenError::Io {
            what: format!("cannot write {}", path.display()),
            source,
        })?;
    }
    if !report.consistent {
        let why = match &report.mailbox {
            Some(m) => format!(
                "{} missing, {} duplicates, {} mismatched, drain {}",
                m.missing,
                m.duplicates,
                m.mismatched,
                if m.drain_complete {
                    "complete"
                } else {
                    "incomplete"
                }
            ),
            None => "payload mismatches or a failed worker".into(),
        };
        return Err(LoadgenError::Inconsistent(why));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn header() -> Header {
        Header {
            run_id: 0x0123_4567_89ab_cdef,
            sender: 3,
            recipient: 2,
            seq: 42,
            sent_us: 0,
        }
    }

    #[test]
    fn payload_round_trip_and_tamper() {
        for len in [PAYLOAD_HEADER_LEN, 41, 47, 1024] {
            let h = header();
            let mut p = make_payload(&h, len);
            assert_eq!(p.len(), len);
            stamp(&mut p, 1_700_000_000_000_000);
            let got = parse_payload(&p).unwrap();
            assert_eq!(
                got,
                Header {
                    sent_us: 1_700_000_000_000_000,
                    ..h
                }
            );
            if len > PAYLOAD_HEADER_LEN {
                let mut bad = p.clone();
                *bad.last_mut().unwrap() ^= 1;
                assert!(parse_payload(&bad).is_none(), "filler tamper at {len}");
            }
            let mut bad = p.clone();
            bad[24] ^= 1; // seq: the filler no longer matches
            assert!(len == PAYLOAD_HEADER_LEN || parse_payload(&bad).is_none());
        }
        assert!(parse_payload(b"short").is_none());
        assert!(parse_payload(&[0u8; 64]).is_none());
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn seeded_identities_are_reproducible() {
        let a = identities(3, Some(9));
        let b = identities(3, Some(9));
        let c = identities(3, Some(10));
        let pk = |v: &[SigningKey]| v.iter().map(|k| k.public()).collect::<Vec<_>>();
        assert_eq!(pk(&a), pk(&b));
        assert_ne!(pk(&a), pk(&c));
        assert_ne!(a[0].public(), a[1].public());
    }

    #[test]
    fn options_are_checked() {
        let target: ConnectString = format!("{}@127.0.0.1:1", "11".repeat(32)).parse().unwrap();
        let ok = Options::new(target.clone());
        assert!(ok.validate().is_ok());
        let mut o = ok.clone();
        o.payload_bytes = 10;
        assert!(o.validate().is_err());
        o.scenario = Scenario::Ingest;
        assert!(o.validate().is_ok());
        let mut o = ok.clone();
        o.clients = 1;
        assert!(o.validate().is_err());
        o.scenario = Scenario::Mixed;
        assert!(o.validate().is_ok());
        let mut o = ok;
        o.requests = Some(0);
        assert!(o.validate().is_err());
    }
}
