//! The cost the metrics add to every request the anchor answers
//! ([`RequestMetrics::record`], called by `metrics::Instrumented` around the
//! router): one histogram observation and one labelled counter increment,
//! each a read-locked hash lookup of an existing label set. Results are in
//! `docs/BENCHMARKS.md` ("Anchor request metrics").
//!
//! ```sh
//! cargo bench -p distsoc-anchor --bench request_metrics
//! ```
//!
//! * `record/1_thread`: one thread, the label sets already created (the
//!   steady state).
//! * `record/2_threads`: two threads recording at once (contention on the
//!   families' read locks and the atomics), time per record.

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use distsoc_anchor::metrics::RequestMetrics;
use distsoc_protocol::codes::MessageCode;

fn bench(c: &mut Criterion) {
    let m = RequestMetrics::default();
    let codes = [
        MessageCode::Enqueue,
        MessageCode::Fetch,
        MessageCode::FetchWait,
        MessageCode::PushPost,
    ];
    for code in codes {
        m.record(code, "ok", Duration::from_micros(300));
    }
    let mut g = c.benchmark_group("record");
    let mut i = 0usize;
    g.bench_function("1_thread", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            m.record(
                codes[i % 4],
                "ok",
                Duration::from_micros(300 + i as u64 % 1000),
            );
        })
    });
    g.bench_function("2_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let m = &m;
                    s.spawn(move || {
                        for n in 0..iters / 2 {
                            let k = (n + t) as usize % 4;
                            m.record(codes[k], "ok", Duration::from_micros(300 + n % 1000));
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
