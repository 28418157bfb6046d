//! The suite can be run again and again against one live target: every run
//! draws its identities, channels and content from its own run id, so the
//! verdicts of a run do not depend on what earlier runs left behind.
//!
//! Two runs of the stateful areas (mailbox channels, check-ins and the
//! fixture authors' posts) against one anchor, each with the default
//! (fresh, random) run id: both pass every MUST case.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::net::SocketAddr;
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_conformance::suite::model::{Role, Verdict};
use distsoc_conformance::suite::report;
use distsoc_conformance::suite::runner::{run, RunConfig};
use distsoc_net::identity::NetworkKey;
use distsoc_protocol::sign::SigningKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_against_one_anchor_both_pass() {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::from_seed(&[9; 32]));
    let defaults = AnchorConfig::default();
    let cfg = AnchorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_listen: String::new(),
        metrics_listen: String::new(),
        mailbox_ttl_secs: 2,
        ..defaults
    };
    let opts = RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: Duration::from_secs(2),
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let target = format!("{}@{}", key.node_id(), anchor.local_addr().unwrap());

    let mut run_ids = Vec::new();
    for round in 0..2 {
        let mut run_cfg = RunConfig::new(target.clone(), Role::Anchor);
        run_cfg.areas = ["MBX", "DISC", "POST", "SYNC"].map(String::from).to_vec();
        // Debug builds of both sides on a loaded 2-core CI machine: a case that
        // pulls and verifies ~200 posts can need more than the default 10 s.
        run_cfg.case_timeout = Duration::from_secs(30);
        let report = run(run_cfg).await.unwrap();
        println!("round {round}:\n{}", report::console(&report, false));
        for area in ["MBX", "DISC", "POST", "SYNC"] {
            assert!(
                report
                    .results
                    .iter()
                    .any(|r| r.case.area == area && r.verdict == Verdict::Pass),
                "round {round}: no {area} case ran and passed"
            );
        }
        let broken = report.must_not_passing();
        assert!(
            broken.is_empty(),
            "round {round}: MUST cases not passing:\n{}",
            broken.join("\n")
        );
        run_ids.push(report.seed);
    }
    assert_ne!(run_ids[0], run_ids[1], "each run gets its own run id");
    anchor.stop(Duration::from_secs(2)).await;
}
