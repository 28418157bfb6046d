//! The `distsoc-node` binary under careless use: a hostile umask, a lost
//! key next to a store, two `run`s on one directory, input over the
//! protocol's limits. Every test runs the real binary on a temp directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

mod common;
use common::BIN;

/// Runs the binary on `dir` with `args` under `umask 000`.
fn node_umask0(dir: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn node(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "command failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "command should fail: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
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

/// Starts `run` on loopback and waits for its "listening" line.
fn spawn_run(dir: &Path) -> Child {
    let (child, line) = common::spawn_first_line(dir, &["run", "--listen", "127.0.0.1:0"]);
    assert!(line.starts_with("listening: "), "run printed {line:?}");
    child
}

#[cfg(unix)]
#[test]
fn umask_000_still_gives_a_private_data_dir_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested").join("data");
    ok(&node_umask0(&dir, &["init", "--listen", "127.0.0.1:0"]));
    // Writes that create the WAL and SHM files, also under umask 000.
    ok(&node_umask0(&dir, &["profile", "set", "--name", "Ann"]));
    ok(&node_umask0(&dir, &["post", "hello"]));
    assert_eq!(mode(&dir), 0o700, "data dir");
    assert_eq!(mode(dir.parent().unwrap()), 0o700, "created parent");
    for f in ["node.key", "config.toml", "anchors.json", "store.sqlite"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    // While `run` has the store open: its WAL and SHM files, and the lock.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--data-dir")
        .arg(&dir)
        .args(["run", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening: "), "{line:?}");
    for f in ["lock", "store.sqlite-wal", "store.sqlite-shm"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn lost_key_next_to_a_store_is_refused_with_a_way_to_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(&node(&dir, &["init"]));
    ok(&node(&dir, &["post", "my first post"]));
    std::fs::remove_file(dir.join("node.key")).unwrap();
    let store_before = std::fs::read(dir.join("store.sqlite")).unwrap();

    // Every command names the problem instead of "run init" ...
    let err = failed(&node(&dir, &["feed"]));
    assert!(err.contains("no node.key"), "{err}");
    assert!(!err.contains("run `distsoc-node init` first"), "{err}");
    // ... and init refuses to create a new identity over the old store.
    let err = failed(&node(&dir, &["init"]));
    assert!(err.contains("will not create a new identity"), "{err}");
    assert!(err.contains("restore node.key"), "{err}");
    assert!(err.contains("--data-dir NEW_DIR init"), "{err}");
    assert!(!dir.join("node.key").exists(), "init wrote a new key");
    assert_eq!(
        std::fs::read(dir.join("store.sqlite")).unwrap(),
        store_before
    );

    // A fresh directory still initializes.
    ok(&node(&tmp.path().join("other"), &["init"]));
}

#[test]
fn second_run_on_one_data_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(&node(&dir, &["init", "--listen", "127.0.0.1:0"]));
    let mut first = spawn_run(&dir);
    let started = std::time::Instant::now();
    let err = failed(&node(&dir, &["run", "--listen", "127.0.0.1:0"]));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the second run must fail at once"
    );
    assert!(err.contains("in use by another process"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    // Short-lived commands still work beside the running node.
    ok(&node(&dir, &["id"]));
    first.kill().unwrap();
    first.wait().unwrap();
    // Once the first is gone, the directory can be served again.
    let mut again = spawn_run(&dir);
    again.kill().unwrap();
    again.wait().unwrap();
}

#[test]
fn input_over_a_protocol_limit_is_refused_before_anything_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(&node(&dir, &["init"]));

    // A post one byte over the text limit: refused, named, nothing stored.
    let err = failed(&node(&dir, &["post", &"x".repeat(65_537)]));
    assert!(err.contains("text"), "{err}");
    assert!(err.contains("65537") && err.contains("65536"), "{err}");
    assert_eq!(ok(&node(&dir, &["--json", "feed"])).trim(), "[]");
    // The same for an encrypted post (checked before sealing).
    let me = ok(&node(&dir, &["id"])).trim().to_string();
    let other = "11".repeat(32);
    let err = failed(&node(
        &dir,
        &[
            "post",
            "--to",
            &format!("{me},{other}"),
            &"y".repeat(65_537),
        ],
    ));
    assert!(err.contains("65536"), "{err}");
    assert_eq!(ok(&node(&dir, &["--json", "feed"])).trim(), "[]");
    // At the limit it is accepted, and the feed still works.
    ok(&node(&dir, &["post", &"x".repeat(65_536)]));
    let feed = ok(&node(&dir, &["--json", "feed"]));
    assert!(feed.contains(&"x".repeat(65_536)));

    // Profile fields.
    let err = failed(&node(&dir, &["profile", "set", "--name", &"n".repeat(129)]));
    assert!(err.contains("displayName") && err.contains("128"), "{err}");
    let err = failed(&node(
        &dir,
        &[
            "profile",
            "set",
            "--name",
            "ok",
            "--bio",
            &"b".repeat(4_097),
        ],
    ));
    assert!(err.contains("bio") && err.contains("4096"), "{err}");
    failed(&node(&dir, &["profile", "show"]));

    // A circle name.
    let err = failed(&node(&dir, &["circle", "create", &"c".repeat(129)]));
    assert!(err.contains("circle name") && err.contains("128"), "{err}");
    assert_eq!(ok(&node(&dir, &["--json", "circle", "list"])).trim(), "[]");
}
