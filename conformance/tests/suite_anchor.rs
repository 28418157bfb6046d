//! The whole wire suite, role anchor, against our anchor started in-process
//! on SQLite (a real QUIC endpoint on 127.0.0.1): every MUST case passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_conformance::suite::model::{Level, Role, Verdict};
use distsoc_conformance::suite::report;
use distsoc_conformance::suite::runner::{run, RunConfig};
use distsoc_conformance::suite::xfail::ExpectedFailures;
use distsoc_node::identity::NetworkKey;
use distsoc_protocol::sign::SigningKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchor_passes_every_must_case() {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::from_seed(&[7; 32]));
    let cfg = AnchorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_listen: String::new(),
        metrics_listen: String::new(),
        // Every case comes from 127.0.0.1: the suite backs off on
        // `rateLimited`, but a higher limit keeps the run to a few seconds.
        rate_limit_per_second: 10_000,
        rate_limit_burst: 10_000,
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: Duration::from_secs(2),
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let target = format!("{}@{}", key.node_id(), anchor.local_addr().unwrap());

    let mut run_cfg = RunConfig::new(target, Role::Anchor);
    run_cfg.seed = 1;
    run_cfg.expected_failures = ExpectedFailures::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected-failures-anchor.toml"),
    )
    .unwrap();
    let report = run(run_cfg).await.unwrap();
    println!("{}", report::console(&report, false));

    let applicable: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.verdict != Verdict::Skipped)
        .collect();
    assert!(
        applicable.len() >= 80,
        "{} applicable cases",
        applicable.len()
    );
    let broken: Vec<String> = report
        .results
        .iter()
        .filter(|r| {
            r.case.level == Level::Must
                && r.verdict != Verdict::Pass
                && r.expected_failure.is_none()
        })
        .filter(|r| r.verdict != Verdict::Skipped)
        .map(|r| {
            format!(
                "{} {}: expected {} — actual {}",
                r.case.id,
                r.verdict.as_str(),
                r.expected,
                r.actual
            )
        })
        .collect();
    assert!(
        broken.is_empty(),
        "MUST cases not passing:\n{}",
        broken.join("\n")
    );
    assert!(!report.failed());
    anchor.stop(Duration::from_secs(2)).await;
}
