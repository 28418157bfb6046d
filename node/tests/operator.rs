//! `distsoc-node run` as an operator sees it: logs on a pipe carry no
//! colour codes, `--log-format json` writes one JSON object per line, and
//! a listen address already in use is named in the error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{cli, free_addr, BIN};

/// `distsoc-node run ARGS…` with stderr piped: waits for the line it
/// prints on stdout once serving, sends SIGTERM and returns stderr.
fn run_and_stop(dir: &Path, args: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("run")
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening: "), "{line}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "node exited with {exit}: {stderr}");
    stderr
}

#[test]
fn run_logs_without_colour_on_a_pipe_and_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    cli(dir.path(), &["init", "--listen", &free_addr().to_string()]);
    let text = run_and_stop(dir.path(), &[]);
    assert!(text.contains("node running"), "{text}");
    assert!(
        !text.contains("\x1b["),
        "ANSI escape in piped logs:\n{text}"
    );

    let json = run_and_stop(dir.path(), &["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let running = lines
        .iter()
        .find(|v| v["fields"]["message"] == "node running")
        .unwrap_or_else(|| panic!("no `node running` line: {json}"));
    assert_eq!(running["level"], "INFO");
    let id = cli(dir.path(), &["id"])["node_id"].clone();
    assert_eq!(running["fields"]["node"], id, "{running}");
    assert!(lines
        .iter()
        .any(|v| v["fields"]["message"] == "node stopped"));

    let bad = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["run", "--log-format", "xml"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("xml") && err.contains("json"), "{err}");
}

#[test]
fn run_on_an_address_in_use_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().to_string();
    cli(dir.path(), &["init", "--listen", &taken]);
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .arg("run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot bind UDP {taken}")) && err.contains("in use"),
        "{err}"
    );
    assert_eq!(err.matches("in use").count(), 1, "said twice: {err}");
}
