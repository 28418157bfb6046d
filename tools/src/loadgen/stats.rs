//! Latency and count statistics per operation, turned into the report.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::report::OpReport;

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
    pub(super) fn is_request(self) -> bool {
        !matches!(self, Op::Connect | Op::Delivery | Op::Wake)
    }
}

#[derive(Debug, Default)]
pub(super) struct OpStats {
    pub(super) ok: u64,
    pub(super) lat_us: Vec<u64>,
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) cancelled: u64,
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
        s.lat_us.push(us);
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
pub(super) fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
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

pub(super) fn op_report(op: Op, mut s: OpStats, phase: Option<Duration>) -> OpReport {
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
pub(super) struct Live {
    pub(super) ok: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) rate_limited: AtomicU64,
}
