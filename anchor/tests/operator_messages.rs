//! What an operator reads when something is wrong, and the logs they
//! collect: PostgreSQL errors name the database, role, host and port with
//! the server's message (a real cluster); an address in use names the
//! address (UDP endpoint, admin and metrics TCP); the binary writes no
//! colour codes to a pipe, and `--log-format json` lines are JSON with one
//! DEBUG line per connection carrying the peer's NodeId in hex.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;
mod pg_harness;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_protocol::sign::SigningKey;

const BIN: &str = env!("CARGO_BIN_EXE_distsoc-anchor");

/// `Anchor::start` with `cfg` (QUIC on 127.0.0.1, admin and metrics off
/// unless `cfg` sets them) in a fresh data directory: its error text.
async fn start_error(cfg: AnchorConfig) -> String {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let opts = RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: Duration::from_secs(1),
    };
    match Anchor::start(&key, &cfg, &opts).await {
        Ok(a) => {
            a.stop(Duration::from_secs(1)).await;
            panic!("the anchor started with {cfg:?}");
        }
        Err(e) => e.to_string(),
    }
}

fn loopback_cfg() -> AnchorConfig {
    AnchorConfig {
        listen: common::LOOPBACK,
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    }
}

fn assert_mentions(text: &str, words: &[&str]) {
    for w in words {
        assert!(text.contains(w), "{w:?} missing from: {text}");
    }
}

#[tokio::test]
async fn postgres_errors_name_database_role_address_and_server_message() {
    if pg_harness::skip() {
        return;
    }
    let cluster = pg_harness::shared();
    let sock = cluster.base().join("sock").display().to_string();
    let port = pg_harness::PORT.to_string();

    // A database that does not exist.
    let e = start_error(AnchorConfig {
        store: cluster.conninfo("no_such_db"),
        ..loopback_cfg()
    })
    .await;
    assert_mentions(
        &e,
        &[
            "cannot open the store",
            "PostgreSQL database \"no_such_db\"",
            "user \"distsoc\"",
            &sock,
            &port,
            "FATAL 3D000",
            "database \"no_such_db\" does not exist",
        ],
    );
    assert!(!e.contains("db error"), "{e}");

    // A role that does not exist.
    let e = start_error(AnchorConfig {
        store: cluster
            .conninfo("postgres")
            .replace("user=distsoc", "user=no_such_role"),
        ..loopback_cfg()
    })
    .await;
    assert_mentions(
        &e,
        &[
            "user \"no_such_role\"",
            &sock,
            "FATAL 28000",
            "role \"no_such_role\" does not exist",
        ],
    );

    // A TCP port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = start_error(AnchorConfig {
        store: format!("postgres://distsoc@127.0.0.1:{port}/anchor"),
        ..loopback_cfg()
    })
    .await;
    assert_mentions(
        &e,
        &[
            "PostgreSQL database \"anchor\"",
            &format!("127.0.0.1:{port}"),
            "unavailable",
            "error connecting to server",
            "refused",
        ],
    );
}

#[tokio::test]
async fn an_address_in_use_is_named() {
    // The QUIC endpoint (UDP).
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let taken = udp.local_addr().unwrap();
    let e = start_error(AnchorConfig {
        listen: taken,
        ..loopback_cfg()
    })
    .await;
    assert_mentions(&e, &[&format!("cannot bind UDP {taken}"), "in use"]);

    // The admin API and the metrics endpoint (TCP).
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = tcp.local_addr().unwrap();
    for (key, cfg) in [
        (
            "admin_listen",
            AnchorConfig {
                admin_listen: taken.to_string(),
                ..loopback_cfg()
            },
        ),
        (
            "metrics_listen",
            AnchorConfig {
                metrics_listen: taken.to_string(),
                ..loopback_cfg()
            },
        ),
    ] {
        let e = start_error(cfg).await;
        assert_mentions(&e, &[key, &format!("cannot bind TCP {taken}"), "in use"]);
    }
}

/// `distsoc-anchor init` in `dir`.
fn init(dir: &std::path::Path) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success(), "init: {out:?}");
}

/// A `distsoc-anchor run` whose stderr is a pipe, read line by line by a
/// thread; the connect string from stdout.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    connect: String,
}

impl Running {
    fn start(dir: &std::path::Path, args: &[&str], rust_log: &str) -> Running {
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir)
            .arg("run")
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "",
                "--metrics-listen",
                "",
            ])
            .args(args)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut connect = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut connect)
            .unwrap();
        Running {
            child,
            lines,
            seen: Vec::new(),
            connect: connect.trim().to_string(),
        }
    }

    /// Waits (at most 30 s) for a stderr line matching `pred`.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!("no {what} line on stderr; got:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// SIGTERM, then every remaining stderr line once it exited.
    fn stop(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "anchor exited with {exit}");
        self.seen.extend(self.lines.iter());
        self.seen
    }
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    // A rate the Hello cannot announce: enforced, announced clamped, and
    // said so at start, naming the key, the limit and the file.
    let cfg = dir.path().join("anchor.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace(
        "\nrate_limit_per_second = 50\n",
        "\nrate_limit_per_second = 100000\n",
    );
    assert!(text.contains("rate_limit_per_second = 100000"));
    std::fs::write(&cfg, text).unwrap();
    let run = Running::start(dir.path(), &[], "debug");
    let lines = run.stop();
    let text = lines.join("\n");
    let warning = lines
        .iter()
        .find(|l| l.contains("WARN") && l.contains("rate_limit_per_second = 100000"))
        .unwrap_or_else(|| panic!("no warning about the rate limit:\n{text}"));
    assert_mentions(
        warning,
        &["65535", "rateLimitPerSecond", &cfg.display().to_string()],
    );
    assert!(text.contains("anchor running"), "{text}");
    assert!(text.contains("anchor stopped"), "{text}");
    assert!(
        !text.contains("\x1b["),
        "ANSI escape in piped logs:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_one_object_per_line_and_one_debug_line_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let mut run = Running::start(
        dir.path(),
        &["--log-format", "json"],
        "info,distsoc_net::transport=debug",
    );
    let cs: distsoc_protocol::ids::ConnectString = run.connect.parse().unwrap();
    let distsoc_protocol::ids::Host::Ip(ip) = cs.host else {
        panic!("{}", run.connect)
    };
    let (client, peer, me) =
        common::connect(cs.node_id, SocketAddr::new(ip, cs.port), common::LOOPBACK).await;
    drop(peer);
    client.close().await;
    let me_hex = me.to_hex();
    let closed = run.wait_for("connection closed", |l| {
        l.contains("connection closed") && l.contains(&me_hex)
    });
    let connect = run.connect.clone();
    let lines = run.stop();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    let closed: serde_json::Value = serde_json::from_str(&closed).unwrap();
    assert_eq!(closed["level"], "DEBUG", "{closed}");
    assert_eq!(closed["fields"]["peer"], me_hex.as_str(), "{closed}");
    assert!(closed["fields"]["remote"].is_string(), "{closed}");
    assert!(closed["fields"]["reason"].is_string(), "{closed}");
    let running = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["fields"]["message"] == "anchor running")
        .expect("an `anchor running` line");
    assert_eq!(running["level"], "INFO");
    assert_eq!(running["fields"]["connect"], connect.as_str());
    // Exactly one line for the connection.
    let per_conn = lines
        .iter()
        .filter(|l| l.contains(&me_hex) && l.contains("connection"))
        .count();
    assert_eq!(per_conn, 1, "{lines:#?}");
}
