//! The passphrase prompt as a person meets it: `distsoc-node export` and
//! `import` without `--passphrase-file`, on a real pseudo-terminal
//! (util-linux `script`, which runs the command on a new pty and copies our
//! pipe to it). Each answer is written only after its prompt appeared and
//! the terminal's echo is off (read with `stty` on the command's pty: the
//! prompt is printed a moment before the reader turns echo off), as a
//! person types after the prompt; the passphrase must not appear in what
//! the terminal shows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

mod common;
use common::{cli, init_quiet, BIN};

const PASS: &str = "tr0ub4dor & 3 purple staples";

/// A command running on a pseudo-terminal: what it shows, as it comes.
struct Tty {
    child: Child,
    input: ChildStdin,
    output: Receiver<Vec<u8>>,
    shown: String,
}

impl Tty {
    fn start(dir: &Path, args: &str) -> Tty {
        let cmd = format!("'{BIN}' --data-dir '{}' {args}", dir.display());
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("util-linux `script` (Debian: bsdutils) runs the command on a pty");
        let input = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Tty {
            child,
            input,
            output,
            shown: String::new(),
        }
    }

    /// Waits (at most 60 s) until the terminal has shown `text` after what
    /// was already consumed, then answers `line`.
    fn answer(&mut self, text: &str, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.shown.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.shown.push_str(&String::from_utf8_lossy(&chunk)),
                Err(e) => panic!("no {text:?} on the terminal ({e}); shown: {:?}", self.shown),
            }
        }
        let at = self.shown.find(text).unwrap() + text.len();
        self.shown.drain(..at);
        self.wait_echo_off(deadline);
        self.input.write_all(line.as_bytes()).unwrap();
        self.input.write_all(b"\n").unwrap();
        self.input.flush().unwrap();
    }

    /// The pty the command runs on: fd 0 of a child of `script`.
    fn pty(&self) -> Option<String> {
        let pid = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().find_map(|c| {
            let link = std::fs::read_link(format!("/proc/{c}/fd/0")).ok()?;
            let link = link.to_string_lossy().into_owned();
            link.starts_with("/dev/pts/").then_some(link)
        })
    }

    /// Waits until the command's terminal has echo off (`stty -a` shows
    /// `-echo`): the state a person's typing meets after the prompt.
    fn wait_echo_off(&self, deadline: Instant) {
        loop {
            let settings = self.pty().and_then(|pty| {
                let out = Command::new("stty")
                    .args(["-F", &pty, "-a"])
                    .output()
                    .ok()?;
                Some(String::from_utf8_lossy(&out.stdout).into_owned())
            });
            if settings
                .as_deref()
                .is_some_and(|s| s.split_whitespace().any(|w| w == "-echo"))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal's echo stayed on after the prompt: {settings:?}"
            );
            std::thread::yield_now();
        }
    }

    /// Waits for the command to end; its exit status and everything the
    /// terminal showed after the last answer.
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        while let Ok(chunk) = self.output.recv_timeout(Duration::from_secs(5)) {
            self.shown.push_str(&String::from_utf8_lossy(&chunk));
        }
        (status.success(), self.shown)
    }
}

#[test]
fn the_passphrase_prompt_does_not_echo_and_round_trips() {
    let root = tempfile::tempdir().unwrap();
    let dir = init_quiet(root.path(), "a");
    let id = cli(&dir, &["id"]);
    let file = root.path().join("me.bundle");

    // Export: asked twice; nothing typed is shown.
    let mut tty = Tty::start(&dir, &format!("export --out '{}'", file.display()));
    tty.answer("Passphrase: ", PASS);
    tty.answer("Repeat the passphrase: ", PASS);
    let (ok, shown) = tty.finish();
    assert!(ok, "export failed: {shown}");
    assert!(shown.contains("exported identity"), "{shown}");
    assert!(
        !shown.contains("tr0ub4dor"),
        "the passphrase was echoed: {shown:?}"
    );
    assert!(file.exists());

    // Two different answers: refused, nothing written.
    let other = root.path().join("other.bundle");
    let mut tty = Tty::start(&dir, &format!("export --out '{}'", other.display()));
    tty.answer("Passphrase: ", PASS);
    tty.answer("Repeat the passphrase: ", "something else");
    let (ok, shown) = tty.finish();
    assert!(!ok, "a mismatched repeat was accepted: {shown}");
    assert!(!other.exists());

    // A wrong passphrase at import: refused, no directory.
    let wrong = root.path().join("wrong");
    let mut tty = Tty::start(&wrong, &format!("import '{}'", file.display()));
    tty.answer("Passphrase: ", "not it");
    let (ok, shown) = tty.finish();
    assert!(!ok, "{shown}");
    assert!(shown.contains("wrong passphrase"), "{shown}");
    assert!(!wrong.exists());

    // The right one: the same identity, and the passphrase not shown.
    let restored = root.path().join("restored");
    let mut tty = Tty::start(&restored, &format!("import '{}'", file.display()));
    tty.answer("Passphrase: ", PASS);
    let (ok, shown) = tty.finish();
    assert!(ok, "import failed: {shown}");
    assert!(
        !shown.contains("tr0ub4dor"),
        "the passphrase was echoed: {shown:?}"
    );
    assert_eq!(cli(&restored, &["id"]), id);
}
