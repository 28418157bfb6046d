//! `distsoc` commands that print to stdout end quietly, with success, when
//! stdout is a closed pipe (`distsoc vectors list | head -1`): the pipe is
//! closed before the command writes anything, so every write fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_distsoc");

fn closed_stdout(args: &[&str]) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "distsoc {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "distsoc {args:?}: {stderr}");
}

#[test]
fn printing_commands_end_quietly_on_a_closed_pipe() {
    closed_stdout(&["demo"]);
    closed_stdout(&["vectors", "list"]);
    closed_stdout(&["keys", "--help"]);
}
