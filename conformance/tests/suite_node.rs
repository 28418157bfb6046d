//! The whole wire suite, role node, against our user node started
//! in-process (embedded SQLite, a real QUIC endpoint on 127.0.0.1): every
//! MUST case passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use distsoc_conformance::suite::cases::post::fixture_ids;
use distsoc_conformance::suite::model::{Role, Verdict, MAX_FRAMES_PER_CASE, MAX_FRAME_BYTES};
use distsoc_conformance::suite::report;
use distsoc_conformance::suite::runner::{run, RunConfig};
use distsoc_conformance::suite::xfail::ExpectedFailures;
use distsoc_node::compose::VisibilityIntent;
use distsoc_node::node::Node;
use distsoc_protocol::ids::PostingId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_passes_every_must_case() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::init(dir.path(), None).unwrap();
    // Endpoint-mode fixtures (conformance/README.md): follow the suite's
    // fixture authors so that PushPost from them is accepted, and publish a
    // public post with an attachment and an encrypted post for fixture
    // recipient 3, so that the content cases have something of the node's
    // own to fetch and verify.
    let now = distsoc_net::now_ms();
    for id in fixture_ids() {
        node.store().follow(PostingId(id), now).unwrap();
    }
    node.post(
        "conformance fixture: public post with an attachment".into(),
        vec![(
            b"fixture blob bytes".to_vec(),
            "text/plain".into(),
            Some("a.txt".into()),
        )],
        &VisibilityIntent::Public,
    )
    .unwrap();
    node.post(
        "conformance fixture: encrypted post".into(),
        Vec::new(),
        &VisibilityIntent::Direct(vec![PostingId(fixture_ids()[3])]),
    )
    .unwrap();
    let running = node
        .start(Some(SocketAddr::from(([127, 0, 0, 1], 0))))
        .await
        .unwrap();
    let target = running.connect_string().unwrap();

    let mut cfg = RunConfig::new(target, Role::Node);
    cfg.seed = 2;
    // Debug builds of both sides on a loaded 2-core CI machine: a case that
    // pulls and verifies ~200 posts can need more than the default 10 s.
    cfg.case_timeout = Duration::from_secs(30);
    cfg.expected_failures = ExpectedFailures::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected-failures-node.toml"),
    )
    .unwrap();
    let report = run(cfg).await.unwrap();
    println!("{}", report::console(&report, false));

    let applicable = report
        .results
        .iter()
        .filter(|r| !matches!(r.verdict, Verdict::Skipped | Verdict::NotApplicable))
        .count();
    // Cases of the other role are NOT_APPLICABLE, and out of the totals.
    assert!(report.summary.not_applicable > 0);
    assert_eq!(
        report.summary.total + report.summary.not_applicable,
        report.results.len() as u64
    );
    // Every case that ran carries its re-run command and the frames it
    // exchanged, bounded.
    for r in report
        .results
        .iter()
        .filter(|r| !matches!(r.verdict, Verdict::NotApplicable | Verdict::Unsupported))
    {
        assert!(
            r.rerun.contains(&format!("--case {} ", r.case.id)),
            "{}",
            r.case.id
        );
        assert!(r.frames.len() <= MAX_FRAMES_PER_CASE, "{}", r.case.id);
        assert!(r.frames.iter().all(|f| f.hex.len() <= 2 * MAX_FRAME_BYTES));
    }
    let bare: Vec<&str> = report
        .results
        .iter()
        .filter(|r| {
            !matches!(r.verdict, Verdict::NotApplicable | Verdict::Unsupported)
                && r.frames.is_empty()
        })
        .map(|r| r.case.id.as_str())
        .collect();
    assert!(
        bare.iter().all(|id| id.starts_with("HS-")),
        "no frames: {bare:?}"
    );
    assert!(applicable >= 80, "{applicable} applicable cases");
    let broken = report.must_not_passing();
    assert!(
        broken.is_empty(),
        "MUST cases not passing:\n{}",
        broken.join("\n")
    );
    assert!(!report.failed());
    running.transport().close().await;
}
