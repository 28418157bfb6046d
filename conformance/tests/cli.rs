//! The `distsoc-conformance` binary as a tester uses it, run as a separate
//! process from a temporary working directory (never the checkout):
//!
//! * `vectors` checks the vectors built into the binary from any directory;
//! * `fixtures --role node|anchor` (text and `--json`) prints the fixture
//!   ids the suite signs with, the same as the library's;
//! * `run --list | head -1` ends quietly on the closed pipe;
//! * `run` against our anchor (started in-process on 127.0.0.1): one
//!   progress line per area on stderr (not a terminal: no bar), node cases
//!   `NOT_APPLICABLE` and out of the totals, `--json -` on stdout, per-case
//!   frames decoded with the schema, and each result's re-run command,
//!   which run as printed runs exactly that case again with the same verdict.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_conformance::suite::cases::post::fixture_ids;
use distsoc_conformance::suite::fixtures::Fixtures;
use distsoc_conformance::suite::model::{Direction, Report, Verdict};
use distsoc_conformance::suite::offline::EMBEDDED;
use distsoc_net::identity::NetworkKey;
use distsoc_protocol::sign::SigningKey;

const BIN: &str = env!("CARGO_BIN_EXE_distsoc-conformance");

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn vectors_work_from_any_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(tmp.path(), &["vectors"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("0 failed") && stdout.contains("built into this binary"),
        "{stdout}"
    );
    // The embedded list is the vectors directory's *.json, byte for byte.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let embedded: Vec<String> = EMBEDDED.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(embedded, on_disk);
    for (name, body) in EMBEDDED {
        assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), body);
    }
    // --dir still reads a directory, and says which.
    let out = run_in(tmp.path(), &["vectors", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("vector files in "));
}

#[test]
fn fixtures_print_the_suites_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let ids: Vec<String> = fixture_ids().iter().map(hex::encode).collect();
    let out = run_in(tmp.path(), &["fixtures", "--role", "node", "--json"]);
    assert!(out.status.success());
    let f: Fixtures = serde_json::from_slice(&out.stdout).unwrap();
    assert!(f.must_follow);
    let got: Vec<&str> = f.identities.iter().map(|i| i.posting_id.as_str()).collect();
    assert_eq!(got, ids);
    // Text: one pasteable line per id, and the follow command for each.
    let out = run_in(tmp.path(), &["fixtures", "--role", "node"]);
    let t = text(&out.stdout);
    for id in &ids {
        assert!(t.lines().any(|l| l.starts_with(id.as_str())), "{t}");
        assert!(t.contains(&format!("distsoc-node follow --offline {id}")));
    }
    let out = run_in(tmp.path(), &["fixtures", "--role", "anchor", "--json"]);
    let f: Fixtures = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!f.must_follow && f.commands.is_empty());
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let mut child = Command::new(BIN)
        .args(["run", "--list", "--role", "anchor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("HS-1-001"));
    // The reader is gone: the rest of the list hits a closed pipe.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_progress_frames_and_rerun_commands() {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::from_seed(&[11; 32]));
    let cfg = AnchorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: Duration::from_secs(2),
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let target = format!("{}@{}", key.node_id(), anchor.local_addr().unwrap());
    let work = tempfile::tempdir().unwrap();
    let html = work.path().join("report.html");

    let args = [
        "run",
        "--target",
        &target,
        "--role",
        "anchor",
        "--area",
        "VER",
        "--area",
        "NODE",
        "--run-id",
        "5",
        "--json",
        "-",
        "--html",
        html.to_str().unwrap(),
    ];
    let w = work.path().to_owned();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run_in(&w, &a)
    })
    .await
    .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    // stdout is the JSON report and nothing else.
    let report: Report = serde_json::from_slice(&out.stdout).unwrap();
    let node: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.case.area == "NODE")
        .collect();
    assert_eq!(node.len(), 29);
    assert!(node.iter().all(|r| r.verdict == Verdict::NotApplicable));
    let ver = report
        .results
        .iter()
        .filter(|r| r.case.area == "VER")
        .count() as u64;
    assert_eq!(report.summary.total, ver);
    assert_eq!(report.summary.not_applicable, 29);
    assert_eq!(report.summary.skipped, 0);
    assert_eq!(report.summary.pass, ver, "{stderr}");

    // stderr: one line per area (not a terminal: no bar), then the summary.
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("VER   {ver}/{ver} pass (")),
        "{stderr}"
    );
    assert_eq!(lines[1], "NODE  n/a (29 cases of the other role) (0.0 s)");
    assert!(lines[2].contains("29 not applicable"), "{stderr}");

    // Frames: the Hello exchange of every VER case, decoded.
    for r in report.results.iter().filter(|r| r.case.area == "VER") {
        assert!(!r.frames.is_empty(), "{} recorded no frames", r.case.id);
        assert!(r.frames.len() <= 24 && r.frames.iter().all(|f| f.hex.len() <= 8192));
    }
    let r = report
        .results
        .iter()
        .find(|r| r.case.id == "VER-1-001")
        .unwrap();
    let sent = &r.frames[0];
    assert_eq!(sent.dir, Direction::Sent);
    assert_eq!(sent.message, "Hello (0x00)");
    assert!(sent.decoded.as_deref().unwrap().contains("version = 2"));
    assert_eq!(sent.hex.len() as u64, 2 * sent.len);
    let got = r
        .frames
        .iter()
        .find(|f| f.dir == Direction::Received)
        .unwrap();
    assert_eq!(got.message, "HelloResponse (0x05)");
    assert!(got.decoded.as_deref().unwrap().contains("capabilities = ["));

    // The HTML report carries both.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Re-run this case") && page.contains("class=\"frames\""));

    // The re-run command, as printed, runs that one case again.
    assert!(node.iter().all(|r| r.rerun.is_empty()));
    let cmd = &r.rerun;
    assert!(
        cmd.starts_with("distsoc-conformance run ") && cmd.contains("--case VER-1-001"),
        "{cmd}"
    );
    let mut words: Vec<String> = cmd.split(' ').skip(1).map(str::to_owned).collect();
    words.extend(["--json".into(), "-".into(), "--quiet".into()]);
    let w = work.path().to_owned();
    let again = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = words.iter().map(String::as_str).collect();
        run_in(&w, &a)
    })
    .await
    .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    let again: Report = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again.results.len(), 1);
    assert_eq!(again.results[0].case.id, "VER-1-001");
    assert_eq!(again.results[0].verdict, r.verdict);
    assert_eq!(again.seed, 5);
    // Same run id, same case: the same bytes sent first (the client key
    // differs per connection, not per run; the Hello carries a time).
    assert_eq!(again.results[0].frames[0].message, "Hello (0x00)");

    anchor.stop(Duration::from_secs(2)).await;
}
