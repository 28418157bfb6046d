//! The `distsoc-anchor` binary's data directory: private whatever the umask,
//! and served by one process at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_distsoc-anchor");

/// `sh -c 'umask 000; exec distsoc-anchor --data-dir DIR ARGS…'`.
fn anchor_umask0(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn");
    c
}

const RUN: &[&str] = &[
    "run",
    "--listen",
    "127.0.0.1:0",
    "--admin-listen",
    "",
    "--metrics-listen",
    "",
];

/// Starts `run` and waits for the connect string it prints once serving.
fn spawn_run(dir: &Path) -> Child {
    let mut child = anchor_umask0(dir, RUN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains('@'), "anchor printed {line:?}");
    child
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[test]
fn umask_000_private_files_and_one_run_per_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("anchor-data");
    let out = anchor_umask0(&dir, &["init"]).output().unwrap();
    assert!(out.status.success(), "init: {out:?}");
    assert_eq!(mode(&dir), 0o700, "data dir");
    for f in ["node.key", "anchor.toml"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }

    let mut first = spawn_run(&dir);
    for f in [
        "lock",
        "anchor.sqlite",
        "anchor.sqlite-wal",
        "anchor.sqlite-shm",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    // A second anchor on the same directory would serve the same key.
    let out = anchor_umask0(&dir, RUN).output().unwrap();
    assert!(!out.status.success(), "second run: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another process"), "{err}");
    first.kill().unwrap();
    first.wait().unwrap();
    let mut again = spawn_run(&dir);
    again.kill().unwrap();
    again.wait().unwrap();
}

#[test]
fn init_refuses_a_new_identity_over_a_store_whose_key_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("anchor-data");
    assert!(anchor_umask0(&dir, &["init"])
        .output()
        .unwrap()
        .status
        .success());
    let mut run = spawn_run(&dir);
    run.kill().unwrap();
    run.wait().unwrap();
    std::fs::remove_file(dir.join("node.key")).unwrap();
    let out = anchor_umask0(&dir, &["init"]).output().unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("will not create a new identity"), "{err}");
    assert!(!dir.join("node.key").exists());
}
