//! The whole wire suite, role anchor, against our anchor started in-process
//! (a real QUIC endpoint on 127.0.0.1), once on SQLite and once on
//! PostgreSQL: every MUST case passes.
//!
//! The anchor runs with its default rate limit (50 requests/s per identity
//! and per IP, so the RL cases provoke it; cases about something else retry
//! `rateLimited`) and a 2 s mailbox TTL (so the TTL cases wait it out).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

#[path = "../../anchor/tests/pg_harness/mod.rs"]
mod pg_harness;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_conformance::suite::model::{Role, Verdict, MAX_FRAMES_PER_CASE, MAX_FRAME_BYTES};
use distsoc_conformance::suite::report;
use distsoc_conformance::suite::runner::{run, RunConfig};
use distsoc_conformance::suite::xfail::ExpectedFailures;
use distsoc_net::identity::NetworkKey;
use distsoc_protocol::sign::SigningKey;

/// Runs the suite against an anchor on `store` (`None`: SQLite in a temp
/// directory) and asserts that every MUST case passes.
async fn suite_against(store: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::from_seed(&[7; 32]));
    let defaults = AnchorConfig::default();
    let cfg = AnchorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_listen: String::new(),
        metrics_listen: String::new(),
        store: store.unwrap_or(defaults.store.clone()),
        // Short enough for MBX-9-054/055 to wait it out.
        mailbox_ttl_secs: 2,
        // The default limit (50/s): RL-9-* provoke it.
        rate_limit_per_second: 50,
        rate_limit_burst: 50,
        ..defaults
    };
    let opts = RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: Duration::from_secs(2),
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let target = format!("{}@{}", key.node_id(), anchor.local_addr().unwrap());

    let mut run_cfg = RunConfig::new(target, Role::Anchor);
    run_cfg.seed = 1;
    // Debug builds of both sides on a loaded 2-core CI machine: a case that
    // pulls and verifies ~200 posts can need more than the default 10 s.
    run_cfg.case_timeout = Duration::from_secs(30);
    run_cfg.expected_failures = ExpectedFailures::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected-failures-anchor.toml"),
    )
    .unwrap();
    let report = run(run_cfg).await.unwrap();
    println!("{}", report::console(&report, false));

    let applicable: Vec<_> = report
        .results
        .iter()
        .filter(|r| !matches!(r.verdict, Verdict::Skipped | Verdict::NotApplicable))
        .collect();
    assert!(
        applicable.len() >= 150,
        "{} applicable cases",
        applicable.len()
    );
    // Cases of the other role are NOT_APPLICABLE, and out of the totals.
    assert!(report.summary.not_applicable > 0);
    assert_eq!(
        report.summary.total + report.summary.not_applicable,
        report.results.len() as u64
    );
    // Every case that ran carries its re-run command and the frames it
    // exchanged, bounded (all but the few HS cases whose TLS handshake is
    // the point: they exchange no frame).
    for r in &applicable {
        assert!(
            r.rerun.contains(&format!("--case {} ", r.case.id)),
            "{}",
            r.case.id
        );
        assert!(r.frames.len() <= MAX_FRAMES_PER_CASE, "{}", r.case.id);
        assert!(r.frames.iter().all(|f| f.hex.len() <= 2 * MAX_FRAME_BYTES));
    }
    let bare: Vec<&str> = applicable
        .iter()
        .filter(|r| r.frames.is_empty() && r.verdict != Verdict::Unsupported)
        .map(|r| r.case.id.as_str())
        .collect();
    assert!(
        bare.iter().all(|id| id.starts_with("HS-")),
        "no frames: {bare:?}"
    );
    for area in ["MBX", "DISC", "RL"] {
        assert!(
            report
                .results
                .iter()
                .any(|r| r.case.area == area && r.verdict == Verdict::Pass),
            "no {area} case ran and passed"
        );
    }
    let broken = report.must_not_passing();
    assert!(
        broken.is_empty(),
        "MUST cases not passing:\n{}",
        broken.join("\n")
    );
    // With a 2 s TTL and a 50/s limit nothing is skipped for being
    // impractical: the TTL and rate-limit cases really ran.
    let skipped: Vec<&str> = report
        .results
        .iter()
        .filter(|r| ["MBX", "RL"].contains(&r.case.area.as_str()) && r.verdict == Verdict::Skipped)
        .map(|r| r.case.id.as_str())
        .collect();
    assert!(skipped.is_empty(), "skipped: {skipped:?}");
    assert!(!report.failed());
    anchor.stop(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchor_passes_every_must_case() {
    suite_against(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchor_on_postgres_passes_every_must_case() {
    if pg_harness::skip() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(pg_harness::shared)
        .await
        .unwrap();
    let url = cluster.create_database().await;
    suite_against(Some(url)).await;
}
