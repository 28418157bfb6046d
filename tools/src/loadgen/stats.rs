//! Latency and count statistics per operation, turned into the report.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::report::OpReport;

/// Largest latency a histogram records, µs (one hour; longer ones are
/// recorded as this).
const HIST_MAX_US: u64 = 3_600_000_000;
/// Significant decimal digits of every recorded latency (HDR precision:
/// values are kept within 0.1 %).
const HIST_DIGITS: u8 = 3;

/// An empty latency histogram (µs, 1 µs .. 1 h, 3 significant digits).
pub(super) fn histogram() -> Histogram<u64> {
    // The bounds are constants that `new_with_bounds` accepts.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, HIST_MAX_US, HIST_DIGITS).expect("valid histogram bounds")
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Op {
    Connect,
    CreateChannel,
    Enqueue,
    Fetch,
    FetchWait,
    PushPost,
    Notify,
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
            Op::Notify => "notify",
            Op::Delivery => "delivery",
            Op::Wake => "wake",
            Op::DrainFetch => "drain_fetch",
        }
    }

    /// Whether the row counts requests sent (not connections or messages).
    pub(super) fn is_request(self) -> bool {
        !matches!(self, Op::Connect | Op::Delivery | Op::Wake)
    }
}

#[derive(Debug)]
pub(super) struct OpStats {
    pub(super) ok: u64,
    /// Latencies of the successful requests, µs.
    pub(super) latency: Histogram<u64>,
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) cancelled: u64,
}

impl Default for OpStats {
    fn default() -> Self {
        Self {
            ok: 0,
            latency: histogram(),
            errors: BTreeMap::new(),
            cancelled: 0,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) ops: BTreeMap<Op, OpStats>,
    pub(super) fetch_wait_empty: u64,
    pub(super) enqueue_retries: u64,
}

pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Stats {
    pub(super) fn ok(&mut self, op: Op, latency: Duration) {
        self.ok_us(op, micros(latency));
    }

    pub(super) fn ok_us(&mut self, op: Op, us: u64) {
        let s = self.ops.entry(op).or_default();
        s.ok += 1;
        s.latency.saturating_record(us.clamp(1, HIST_MAX_US));
    }

    pub(super) fn err(&mut self, op: Op, code: &str) {
        *self
            .ops
            .entry(op)
            .or_default()
            .errors
            .entry(code.to_string())
            .or_default() += 1;
    }

    pub(super) fn cancelled(&mut self, op: Op) {
        self.ops.entry(op).or_default().cancelled += 1;
    }

    pub(super) fn merge(&mut self, other: Stats) {
        for (op, o) in other.ops {
            let s = self.ops.entry(op).or_default();
            s.ok += o.ok;
            // Same bounds on both sides: adding cannot fail.
            let _ = s.latency.add(&o.latency);
            s.cancelled += o.cancelled;
            for (k, v) in o.errors {
                *s.errors.entry(k).or_default() += v;
            }
        }
        self.fetch_wait_empty += other.fetch_wait_empty;
        self.enqueue_retries += other.enqueue_retries;
    }
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub(super) fn op_report(op: Op, s: OpStats, phase: Option<Duration>) -> OpReport {
    let h = &s.latency;
    let seen = !h.is_empty();
    let at = |q: f64| seen.then(|| us_to_ms(h.value_at_quantile(q)));
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
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        p999_ms: at(0.999),
        max_ms: seen.then(|| us_to_ms(h.max())),
        mean_ms: seen.then(|| h.mean() / 1000.0),
        latency_us: s.latency,
    }
}

/// Counters for the progress bar.
#[derive(Debug, Default)]
pub(super) struct Live {
    pub(super) ok: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) rate_limited: AtomicU64,
}
