//! `distsoc devnet`, the built binary, end to end: a real anchor and three
//! real nodes on 127.0.0.1 in a temp dir. It must exit 0 within the bound,
//! print every step and its checks, and leave the data directories behind
//! when `--dir` is given.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Stdio;
use std::time::Duration;

/// The whole run (build excluded), including the conformance suite.
const BOUND: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_runs_the_scenario_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_distsoc"))
        .arg("devnet")
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("distsoc devnet did not finish within {BOUND:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "devnet failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for expected in [
        "1. start the network",
        "2. everyone signs a public profile",
        "3. Bob and Carol follow Alice",
        "4. Alice posts publicly; Bob and Carol pull it",
        "✓ Bob's feed shows \"Hello from Alice! This one is public.\"",
        "✓ Carol's feed shows",
        "5. Alice posts to her circle",
        "✓ Bob decrypts and reads",
        "✓ Carol's pull did not include the circle post at all",
        "6. Bob goes offline; Alice DMs him through the anchor",
        "✓ the anchor holds ciphertext only",
        "✓ a retry with the same clientMessageId",
        "7. Bob comes back",
        "✓ the DM reads as Alice wrote it",
        "✓ acknowledged (ackThrough)",
        "✓ Bob caught up with exactly the post he missed",
        "8. Dave knows only the anchor: he finds Alice by NodeId through the mesh",
        "✓ the mesh resolves Alice's NodeId with no connect string given",
        "✓ Dave's feed shows Alice's",
        "9. conformance suite against the anchor",
        "All scenario checks passed.",
        "network stopped",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in the output:\n{stdout}"
        );
    }
    assert!(!stdout.contains("✗"), "{stdout}");
    // The connect strings are printed while the network is up (right after
    // it started, before the scenario), and the node directories are
    // usable by distsoc-node afterwards.
    let strings = stdout
        .find("Connect strings (the network is up")
        .expect(&stdout);
    assert!(
        strings < stdout.find("2. everyone signs").unwrap(),
        "{stdout}"
    );
    assert!(
        stdout[strings..]
            .lines()
            .nth(1)
            .unwrap()
            .trim_start()
            .starts_with("anchor  "),
        "{stdout}"
    );
    // The log of the anchor and the nodes is in the network directory.
    let log = std::fs::read_to_string(dir.join("logs/devnet.log")).unwrap();
    assert!(
        !log.is_empty() && !log.contains('\u{1b}'),
        "a plain-text log"
    );
    // The conformance reports are in the network directory.
    for report in ["report.html", "report.json"] {
        let p = dir.join("conformance").join(report);
        assert!(std::fs::metadata(&p).unwrap().len() > 0, "{}", p.display());
        assert!(stdout.contains(&p.display().to_string()), "{stdout}");
    }
    for name in ["anchor", "alice", "bob", "carol"] {
        assert!(dir.join(name).join("node.key").exists(), "{name} key");
    }
    assert!(dir.join("anchor/anchor.toml").exists());
    let anchors = std::fs::read_to_string(dir.join("bob/anchors.json")).unwrap();
    assert!(anchors.contains('@'), "bob's anchors.json names the anchor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_refuses_a_non_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("something"), b"x").unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_distsoc"))
            .args(["devnet", "--no-suite", "--dir"])
            .arg(tmp.path())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
}
