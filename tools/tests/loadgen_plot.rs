//! `distsoc loadgen --plot`, the built binary, against a real anchor (the
//! `distsoc-anchor` service on SQLite, in this process, on 127.0.0.1): the
//! run ends consistent, the table has the HDR percentiles, and the SVG
//! picture is written and names every operation that has latencies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::{NetworkKey, KEY_FILE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchwait_run_against_a_real_anchor_writes_the_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("anchor");
    std::fs::create_dir_all(&dir).unwrap();
    let key = NetworkKey::create(&dir.join(KEY_FILE)).unwrap();
    let cfg = AnchorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_listen: "127.0.0.1:0".into(),
        metrics_listen: "127.0.0.1:0".into(),
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.clone(),
        drain_timeout: Duration::from_secs(2),
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let target = format!("{}@{}", key.node_id(), anchor.local_addr().unwrap());
    let svg = tmp.path().join("latency.svg");
    let json = tmp.path().join("report.json");

    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_distsoc"))
        .args(["loadgen", "--target", &target, "--scenario", "fetchwait"])
        .args([
            "--clients",
            "4",
            "--duration",
            "2",
            "--fetch-wait-ms",
            "1000",
        ])
        .args(["--seed", "7", "--no-progress", "--plot"])
        .arg(&svg)
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("loadgen finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("p90 ms") && stdout.contains("p99.9 ms"),
        "{stdout}"
    );
    assert!(stdout.contains("result: consistent"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let ops: Vec<&serde_json::Value> = report["ops"].as_array().unwrap().iter().collect();
    let with_latency: Vec<&str> = ops
        .iter()
        .filter(|o| o["ok"].as_u64().unwrap() > 0)
        .map(|o| o["op"].as_str().unwrap())
        .collect();
    for op in ["connect", "enqueue", "fetch_wait", "wake"] {
        assert!(with_latency.contains(&op), "{op} in {with_latency:?}");
    }
    for o in &ops {
        if o["ok"].as_u64().unwrap() > 0 {
            let p = |k: &str| o[k].as_f64().unwrap();
            assert!(
                p("p50_ms") <= p("p90_ms") && p("p90_ms") <= p("p99_ms"),
                "{o}"
            );
            assert!(
                p("p99_ms") <= p("p999_ms") && p("p999_ms") <= p("max_ms") * 1.001,
                "{o}"
            );
        }
    }

    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.len() > 2000, "{} bytes", picture.len());
    assert!(
        picture.trim_start().starts_with("<svg"),
        "{}",
        &picture[..100]
    );
    assert!(picture.trim_end().ends_with("</svg>"));
    assert!(picture.contains("latency, ms (log scale)"));
    for op in &with_latency {
        assert!(picture.contains(&format!("{op} (n=")), "{op} in the legend");
    }
    anchor.stop(Duration::from_secs(2)).await;
}
