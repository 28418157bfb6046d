//! `distsoc loadgen`: many concurrent QUIC clients against an anchor, bounded
//! in count and time, reporting throughput and latency per operation.
//!
//! # Shape
//!
//! * Every client is its own Ed25519 identity (`--seed` makes them
//!   reproducible) with its own QUIC endpoint
//!   ([`Transport`](distsoc_net::transport::Transport)) and connection to
//!   the target. A client endpoint serves nothing: its handler refuses
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
//!   bidirectional stream, answered `Ack`). With `--presign N` the posts
//!   are signed before the load phase (on every core), so the load
//!   generator takes little CPU from the server it measures; the load phase
//!   then also ends when they are used up.
//! * `mixed`: paired clients pick each operation at random: 35 % Enqueue,
//!   30 % Fetch, 10 % short `FetchWait` (250 ms), 25 % PushPost; an unpaired
//!   client only pushes posts.
//! * `notify`: each client pushes `PostNotification`s (bidirectional
//!   stream, `Ack`), which an anchor acknowledges without doing anything:
//!   what one request and its answer cost on a fresh stream (the transport
//!   floor under `ingest`).
//!
//! **Server CPU per operation.** With `--server-pid` (and `--postgres-pid`,
//! the postmaster of the server's PostgreSQL cluster) the report gives the
//! CPU those processes used during the load phase (`/proc/PID/stat`) per
//! operation: per acknowledged post (`ingest`), per acknowledged enqueue
//! (`mailbox`: each message is also fetched; `fetchwait`: and woken), per
//! successful request (`mixed`); with the load generator's own and the
//! load average. On a shared machine this is the stable figure.
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

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use distsoc_net::transport::TransportError;
use distsoc_protocol::ids::ConnectString;
use distsoc_protocol::limits::MAX_MAILBOX_PAYLOAD_BYTES;
use serde::Serialize;

/// Most clients in one run.
pub const MAX_CLIENTS: usize = 4096;
/// Most requests in flight per client.
pub const MAX_CONCURRENCY_PER_CLIENT: usize = 64;
/// Length of the loadgen header at the start of every mailbox payload; the
/// smallest `--payload-bytes`.
pub const PAYLOAD_HEADER_LEN: usize = 40;
/// Most posts `--presign` signs (about 1.3 KiB each in memory with the
/// default payload).
pub const MAX_PRESIGN: u64 = 2_000_000;
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
    /// Each client pushes `PostNotification`s (Ack), which an anchor
    /// answers without any work: the cost of one request and its answer
    /// on a fresh stream.
    Notify,
}

impl Scenario {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Mailbox => "mailbox",
            Scenario::Fetchwait => "fetchwait",
            Scenario::Ingest => "ingest",
            Scenario::Mixed => "mixed",
            Scenario::Notify => "notify",
        }
    }

    fn uses_mailbox(self) -> bool {
        !matches!(self, Scenario::Ingest | Scenario::Notify)
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
    /// `ingest`/`mixed`: posts signed before the load phase (all clients
    /// together), so signing does not take CPU from the server measured;
    /// the load phase also ends when they are used up. 0 = sign each post
    /// when it is sent.
    pub presign: u64,
    /// The server's pid: its CPU per operation is reported.
    pub server_pid: Option<u32>,
    /// The PostgreSQL postmaster's pid: the cluster's CPU per operation
    /// (postmaster and backends) is reported.
    pub postgres_pid: Option<u32>,
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
            presign: 0,
            server_pid: None,
            postgres_pid: None,
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
        if self.presign > 0 && !matches!(self.scenario, Scenario::Ingest | Scenario::Mixed) {
            return bad("--presign only applies to --scenario ingest and mixed".into());
        }
        if self.presign > MAX_PRESIGN {
            return bad(format!("--presign must be at most {MAX_PRESIGN}"));
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
    /// Draw the latency of every operation (cumulative and distribution,
    /// log latency axis) as an SVG picture in this file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
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
    /// ingest and mixed: sign this many posts (all clients together) before
    /// the load phase, so the load generator does not take CPU from the
    /// server it measures; the load phase ends when they are used up.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub presign: u64,
    /// Report the CPU this process (the server under test) uses per
    /// operation, read from /proc/PID/stat.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Report the CPU of this PostgreSQL cluster (the postmaster's pid: it
    /// and all its backends) per operation.
    #[arg(long, value_name = "PID")]
    pub postgres_pid: Option<u32>,
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
        o.presign = self.presign;
        o.server_pid = self.server_pid;
        o.postgres_pid = self.postgres_pid;
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

mod cpu;
mod payload;
mod plot;
mod report;
mod run;
mod stats;
mod worker;

pub use cpu::CpuReport;
pub use plot::write_svg;
pub use report::*;
pub use run::{main, run, run_until};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::payload::{make_payload, parse_payload, stamp, Header};
    use super::run::identities;
    use super::stats::{op_report, Op, Stats};
    use super::*;
    use distsoc_protocol::sign::SigningKey;

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
    fn percentiles_from_the_histogram() {
        // 1..=1000 ms, recorded by two workers and merged.
        let (mut a, mut b) = (Stats::default(), Stats::default());
        for ms in 1..=1000u64 {
            let s = if ms % 2 == 0 { &mut a } else { &mut b };
            s.ok_us(Op::Fetch, ms * 1000);
        }
        a.merge(b);
        let r = op_report(Op::Fetch, a.ops.remove(&Op::Fetch).unwrap(), None);
        assert_eq!(r.ok, 1000);
        assert_eq!(r.latency_us.len(), 1000);
        let near = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!(
                (got - want).abs() <= want * 0.001 + 0.001,
                "{got} vs {want}"
            );
        };
        near(r.p50_ms, 500.0);
        near(r.p90_ms, 900.0);
        near(r.p99_ms, 990.0);
        near(r.p999_ms, 999.0);
        near(r.max_ms, 1000.0);
        near(r.mean_ms, 500.5);
        let empty = op_report(Op::Wake, Default::default(), None);
        assert_eq!(empty.p50_ms, None);
        assert_eq!(empty.max_ms, None);
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
