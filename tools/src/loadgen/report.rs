//! The load generator's report: what is printed and written as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::cpu::CpuReport;
use super::Scenario;
use distsoc_protocol::limits::RATE_LIMIT_PER_SECOND;
use hdrhistogram::Histogram;
use serde::Serialize;

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
    /// The `--presign` posts were used up.
    Presigned,
}

// The stop reason as stored in `Run::stop_reason` (an `AtomicU8`).
pub(super) const STOP_NONE: u8 = 0;
pub(super) const STOP_DURATION: u8 = 1;
pub(super) const STOP_REQUESTS: u8 = 2;
pub(super) const STOP_INTERRUPTED: u8 = 3;
pub(super) const STOP_PRESIGNED: u8 = 4;

impl StopReason {
    pub(super) fn from_u8(v: u8) -> Self {
        match v {
            STOP_REQUESTS => StopReason::Requests,
            STOP_INTERRUPTED => StopReason::Interrupted,
            STOP_PRESIGNED => StopReason::Presigned,
            _ => StopReason::Duration,
        }
    }

    fn name(self) -> &'static str {
        match self {
            StopReason::Duration => "duration",
            StopReason::Requests => "requests",
            StopReason::Interrupted => "interrupted",
            StopReason::Presigned => "presigned posts used up",
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
    /// Median latency of the successful requests, ms (from the HDR
    /// histogram: within 0.1 % of the recorded value).
    pub p50_ms: Option<f64>,
    /// 90th percentile latency, ms.
    pub p90_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile latency, ms.
    pub p999_ms: Option<f64>,
    /// Largest latency, ms.
    pub max_ms: Option<f64>,
    /// Mean latency, ms.
    pub mean_ms: Option<f64>,
    /// Every successful request's latency, µs (1 µs to 1 h, 3 significant
    /// digits): what the percentiles and `--plot` are read from. Not in
    /// the JSON report.
    #[serde(skip)]
    pub latency_us: Histogram<u64>,
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
    /// Posts signed before the load phase (`--presign`; 0 = signed while
    /// sending).
    pub presigned: u64,
    /// CPU per operation of the server (`--server-pid`), the PostgreSQL
    /// cluster (`--postgres-pid`) and the load generator; present when a
    /// pid was given.
    pub cpu: Option<CpuReport>,
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
            "{:<14} {:>9} {:>7} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}  errors by code",
            "op",
            "ok",
            "errors",
            "cancelled",
            "ops/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
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
                "{:<14} {:>9} {:>7} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}  {}",
                o.op,
                o.ok,
                o.errors,
                o.cancelled,
                o.throughput_per_s
                    .map_or_else(|| "-".to_string(), |t| format!("{t:.1}")),
                opt_ms(o.p50_ms),
                opt_ms(o.p90_ms),
                opt_ms(o.p99_ms),
                opt_ms(o.p999_ms),
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
        if let Some(c) = &self.cpu {
            let _ = writeln!(s, "{}", c.line());
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
