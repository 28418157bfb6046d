//! Helpers shared by the tests that drive the `distsoc-node` binary.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_distsoc-node");

/// Starts `distsoc-node --data-dir DIR ARGS…` (`RUST_LOG=warn`) and returns
/// it with the first line it prints: `run` prints its connect string (or a
/// JSON object with `connect` under `--json`) once its endpoint is bound.
pub fn spawn_first_line(dir: &Path, args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

/// A free UDP port on 127.0.0.1 (bound, read, released).
pub fn free_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Runs `distsoc-node --data-dir DIR --json ARGS…` (`RUST_LOG=warn`).
pub fn cli_raw(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// [`cli_raw`], which must succeed; its JSON output (`null` if none).
pub fn cli(dir: &Path, args: &[&str]) -> Value {
    let out = cli_raw(dir, args);
    assert!(
        out.status.success(),
        "distsoc-node {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// `distsoc-node init` in `root/NAME` on a free loopback port, with
/// background sync rare enough (hourly) that only what a test drives
/// happens; the data directory.
pub fn init_quiet(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    cli(&dir, &["init", "--listen", &free_addr().to_string()]);
    let cfg = dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("sync_interval_secs = 60", "sync_interval_secs = 3600");
    std::fs::write(&cfg, text).unwrap();
    dir
}

/// A running `distsoc-node run` and its connect string; killed on drop.
pub struct Running(pub Child, pub String);

impl Running {
    /// Starts `run --json` in `dir` and reads its connect string.
    pub fn start(dir: &Path) -> Running {
        let (child, line) = spawn_first_line(dir, &["--json", "run"]);
        let v: Value = serde_json::from_str(&line).unwrap();
        Running(child, v["connect"].as_str().unwrap().to_string())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
