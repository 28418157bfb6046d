//! Helpers shared by the tests that drive the `distsoc-node` binary.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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
