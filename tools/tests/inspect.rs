//! `distsoc inspect`, the built binary, as a user runs it: a file, stdin,
//! hex with newlines, a golden vector file, and a reader that closes the
//! pipe early (`distsoc inspect … | head -1`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn vectors(name: &str) -> String {
    format!(
        "{}/../conformance/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn inspect(args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_distsoc"))
        .arg("inspect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(b) = stdin {
        input.write_all(b).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Ack of frames.json `valid-ack`, as hex.
const ACK: &str = "7e000000000200000000000000010000000200420000000000";

#[test]
fn file_stdin_and_hex_give_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("ack.bin");
    std::fs::write(&raw, hex::decode(ACK).unwrap()).unwrap();
    let hex_file = dir.path().join("ack.hex");
    // Hex with spaces and newlines, as copied from a log.
    let spaced: String = ACK
        .as_bytes()
        .chunks(8)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" \n");
    std::fs::write(&hex_file, &spaced).unwrap();

    let (ok, from_raw, err) = inspect(&[raw.to_str().unwrap()], None);
    assert!(ok, "{err}");
    for want in [
        "format    wire frame: code 0x7e Ack (response), 1 segment, 2 words",
        "framing   VALID",
        "message   VALID (version 2)",
        "Ack\n  version: 2\n  requestCode: 66 (0x42 PushPost)\n",
    ] {
        assert!(from_raw.contains(want), "{want:?} in\n{from_raw}");
    }
    let tree = |s: &str| s.split_once('\n').unwrap().1.to_string();
    let (ok, from_hex_file, _) = inspect(&[hex_file.to_str().unwrap()], None);
    assert!(ok);
    assert_eq!(tree(&from_hex_file), tree(&from_raw));
    let (ok, from_stdin, _) = inspect(&["-"], Some(spaced.as_bytes()));
    assert!(ok);
    assert_eq!(tree(&from_stdin), tree(&from_raw));
    let (ok, from_arg, _) = inspect(&["--hex", &spaced], None);
    assert!(ok);
    assert_eq!(tree(&from_arg), tree(&from_raw));

    let (ok, json, _) = inspect(&["--json", raw.to_str().unwrap()], None);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["name"], "Ack");
    assert_eq!(v["message"]["valid"], true);
    assert_eq!(v["value"]["requestCode"], 66);

    // Not a known format: an error naming what was tried, exit non-zero.
    let (ok, _, err) = inspect(&["--hex", "ff02"], None);
    assert!(!ok);
    assert!(err.contains("--as TYPE"), "{err}");
}

#[test]
fn a_vector_file_lists_every_record_and_they_all_agree() {
    let (ok, out, err) = inspect(&[&vectors("frames.json")], None);
    assert!(ok, "{err}");
    assert!(out.starts_with("frames.json: "), "{out}");
    assert!(!out.contains("DIFFERS"), "{out}");
    assert_eq!(out.matches(" ok\n").count(), 196, "{out}");
    let (ok, out, _) = inspect(
        &[
            &vectors("frames.json"),
            "--record",
            "valid-code-42-pushpost",
        ],
        None,
    );
    assert!(ok);
    assert!(out.contains("code 0x42 PushPost"), "{out}");
    let (ok, out, _) = inspect(&[&vectors("canonical.json")], None);
    assert!(ok);
    assert!(!out.contains("DIFFERS"), "{out}");
}

/// `distsoc inspect … | head -1`: the reader goes away after one line; the
/// tool ends quietly (no panic, no error message, exit 0).
#[test]
fn a_closed_pipe_ends_quietly() {
    // About 500 KB of output: far more than a pipe buffers, so the writer
    // is still writing when the reader closes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_distsoc"))
        .args(["inspect", "--full", "--record", "reject-post-too-large"])
        .arg(vectors("canonical.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("record    reject-post-too-large"),
        "{first}"
    );
    drop(reader);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}
