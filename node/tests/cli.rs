//! The `distsoc-node` binary as a person uses it: real processes (`run`
//! serving, one-shot commands beside it on the same data directory), QUIC
//! on 127.0.0.1, a real anchor (SQLite) where one is needed.
//!
//! * `delete POSTID` (issue 9 item 13): an author delete removes the post
//!   locally — even one whose stored bytes no longer decode — and the delete
//!   reaches a follower pulling from the author and is deposited at an
//!   anchor, which then serves the delete instead of the post.
//! * Audience push (item 19): an approved member that announced its listen
//!   address receives the author's push, driven from the CLI, although the
//!   author never dialled the member before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_node::config::Config;
use distsoc_node::node::Node;
use distsoc_protocol::ids::{ConnectString, PostingId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::social::PullSyncRequest;
use distsoc_protocol::sign::SigningKey;
use serde_json::Value;

mod common;
use common::{cli, cli_raw, free_addr, BIN};
const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
const STEP: Duration = Duration::from_secs(20);

/// A `distsoc-node run` process, killed on drop.
struct Running {
    child: Child,
    connect: String,
}

impl Running {
    fn start(dir: &Path) -> Running {
        // The first line is printed once the endpoint is bound.
        let (child, line) = common::spawn_first_line(dir, &["--json", "run"]);
        let v: Value = serde_json::from_str(&line).unwrap();
        Running {
            child,
            connect: v["connect"].as_str().unwrap().to_string(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `init` with a concrete listen address; background sync rare enough that
/// only what the test drives happens.
fn init(root: &Path, name: &str) -> (PathBuf, SocketAddr) {
    let dir = root.join(name);
    let listen = free_addr();
    cli(&dir, &["init", "--listen", &listen.to_string()]);
    let cfg = dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("sync_interval_secs = 60", "sync_interval_secs = 3600");
    assert!(text.contains("sync_interval_secs = 3600"), "{text}");
    std::fs::write(&cfg, text).unwrap();
    (dir, listen)
}

fn id(dir: &Path) -> String {
    cli(dir, &["id"])["node_id"].as_str().unwrap().to_string()
}

fn feed(dir: &Path) -> Vec<(String, String)> {
    cli(dir, &["feed"])
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn post(dir: &Path, text: &str) -> String {
    cli(dir, &["post", text])["post_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn anchor(root: &Path) -> (Anchor, String) {
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: root.join("anchor"),
        drain_timeout: Duration::from_secs(5),
    };
    std::fs::create_dir_all(&opts.data_dir).unwrap();
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let cs = format!("{}@{}", key.node_id(), anchor.local_addr().unwrap());
    (anchor, cs)
}

/// Post ids and deleted post ids a stranger following `author` pulls
/// from `target`, from cursor 0.
async fn stranger_pull(root: &Path, target: &str, author: PostingId) -> (Vec<String>, Vec<String>) {
    let stranger = Node::init(
        &root.join("stranger"),
        Some(Config {
            listen: LOOPBACK,
            ..Config::default()
        }),
    )
    .or_else(|_| Node::open(&root.join("stranger")))
    .unwrap();
    let running = stranger.start(Some(LOOPBACK)).await.unwrap();
    let cs: ConnectString = target.parse().unwrap();
    let peer = tokio::time::timeout(STEP, running.connect(&cs))
        .await
        .unwrap()
        .unwrap();
    let req = PullSyncRequest {
        version: PROTOCOL_VERSION,
        ids: vec![author],
        since_seq: 0,
        limit: 0,
    };
    let page = peer.call(req).await.unwrap();
    running.transport().close().await;
    (
        page.posts.iter().map(|p| p.post_id().to_hex()).collect(),
        page.deletes
            .iter()
            .map(|d| d.body().post_id.to_hex())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_command_removes_a_post_even_an_unreadable_one_everywhere() {
    let root = tempfile::tempdir().unwrap();
    let (anchor, anchor_cs) = anchor(root.path()).await;
    let (alice, _) = init(root.path(), "alice");
    let (bob, _) = init(root.path(), "bob");
    let alice_id = id(&alice);
    let keep = post(&alice, "keep me");
    let gone = post(&alice, "delete me");
    let broken = post(&alice, "stored by an older build");
    // Alice deposits all three at the anchor.
    let report = cli(&alice, &["connect", &anchor_cs]);
    assert_eq!(report["deposited"], 3, "{report}");
    // Bob follows Alice and pulls all three from her `run` process.
    let alice_run = Running::start(&alice);
    cli(&bob, &["follow", &alice_id]);
    cli(&bob, &["connect", &alice_run.connect]);
    assert_eq!(feed(&bob).len(), 3);

    // One stored post no longer decodes (what an older build without the
    // limits could leave behind).
    {
        let db = rusqlite::Connection::open(alice.join("store.sqlite")).unwrap();
        let broken_id = hex::decode(&broken).unwrap();
        let n = db
            .execute(
                "UPDATE posts SET sync_post = X'00' WHERE post_id = ?1",
                [&broken_id],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    // Not a post id of ours / not held: refused with a clear error.
    let out = cli_raw(&alice, &["delete", &"ab".repeat(32)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no post"));

    cli(&alice, &["delete", &gone]);
    cli(&alice, &["delete", &broken]);
    let texts: Vec<String> = feed(&alice).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, vec!["keep me".to_string()]);

    // Bob pulls from Alice again: both deletes are honoured.
    cli(&bob, &["connect", &alice_run.connect]);
    let ids: Vec<String> = feed(&bob).into_iter().map(|(i, _)| i).collect();
    assert_eq!(ids, vec![keep.clone()]);

    // Alice's next sync with the anchor deposits the two deletes; the
    // anchor then serves the deletes and not the posts.
    let report = cli(&alice, &["connect", &anchor_cs]);
    assert_eq!(report["deposited"], 2, "{report}");
    let author = PostingId(hex::decode(&alice_id).unwrap().try_into().unwrap());
    let (posts, deletes) = stranger_pull(root.path(), &anchor_cs, author).await;
    assert_eq!(posts, vec![keep]);
    let mut deletes = deletes;
    deletes.sort();
    let mut want = vec![gone, broken];
    want.sort();
    assert_eq!(deletes, want);

    drop(alice_run);
    anchor.stop(Duration::from_secs(2)).await;
}

#[test]
fn audience_push_reaches_a_member_that_announced_its_address() {
    let root = tempfile::tempdir().unwrap();
    let (alice, _) = init(root.path(), "alice");
    let (bob, bob_listen) = init(root.path(), "bob");
    let (alice_id, bob_id) = (id(&alice), id(&bob));
    let alice_run = Running::start(&alice);
    let bob_run = Running::start(&bob);
    assert!(bob_run.connect.ends_with(&bob_listen.to_string()));

    // Bob asks through Alice's running node (from a one-shot command: its
    // endpoint announces where Bob's `run` listens). Alice never dials Bob.
    cli(
        &bob,
        &[
            "audience",
            "request",
            &alice_id,
            "--via",
            &alice_run.connect,
            "--message",
            "let me in",
        ],
    );
    let peers = cli(&alice, &["peers"]);
    let bob_peer = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node_id"] == bob_id.as_str())
        .unwrap_or_else(|| panic!("Alice recorded no address for Bob: {peers}"));
    assert_eq!(bob_peer["addresses"][0], bob_listen.to_string());
    assert_eq!(bob_peer["is_anchor"], false);

    cli(&alice, &["audience", "approve", &bob_id]);
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&alice)
        .args(["post", "for my audience"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pushed to 1 audience member(s)"),
        "{stderr}"
    );
    // Bob's running node stored the push (Bob never pulled: his background
    // sync runs hourly in this test, and its first round was before the post).
    let texts: Vec<String> = feed(&bob).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, vec!["for my audience".to_string()]);
    drop((alice_run, bob_run));
}

/// What a node announces in Hello: `advertise`, else a concrete listen
/// address, never an unspecified one or port 0.
#[test]
fn advertised_addresses_are_concrete_or_none() {
    use distsoc_node::node::advertised;
    let at = |s: &str| s.parse::<SocketAddr>().unwrap();
    let mut cfg = Config::default();
    assert!(
        advertised(&cfg, None).is_empty(),
        "0.0.0.0:4433 is not announced"
    );
    assert!(advertised(&cfg, Some(at("0.0.0.0:0"))).is_empty());
    assert!(advertised(&cfg, Some(at("[::]:4433"))).is_empty());
    cfg.listen = at("192.0.2.7:4433");
    assert_eq!(advertised(&cfg, None), vec![at("192.0.2.7:4433")]);
    // A CLI command's short-lived endpoint announces where `run` listens.
    assert_eq!(
        advertised(&cfg, Some(at("0.0.0.0:0"))),
        vec![at("192.0.2.7:4433")]
    );
    assert_eq!(
        advertised(&cfg, Some(at("127.0.0.1:5000"))),
        vec![at("127.0.0.1:5000")]
    );
    // Port 0 ("any port") is announced; the transport puts the bound port
    // in Hello (`Transport::listen_addresses`).
    assert_eq!(
        advertised(
            &Config {
                listen: at("127.0.0.1:0"),
                ..Config::default()
            },
            None
        ),
        vec![at("127.0.0.1:0")]
    );
    cfg.advertise = vec![at("198.51.100.1:443")];
    assert_eq!(advertised(&cfg, None), vec![at("198.51.100.1:443")]);
}

#[test]
fn anchor_commands_manage_anchors_json() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = init(root.path(), "a");
    let (x, y) = ("ab".repeat(32), "cd".repeat(32));
    assert_eq!(cli(&dir, &["anchor", "list"]), serde_json::json!([]));
    cli(&dir, &["anchor", "add", &format!("{x}@127.0.0.1:4500")]);
    cli(&dir, &["anchor", "add", &format!("{y}@[::1]:4501")]);
    // The same anchor at a new address replaces the old entry.
    let v = cli(&dir, &["anchor", "add", &format!("{x}@10.0.0.1:4500")]);
    assert_eq!(v["replaced"], true);
    assert_eq!(
        cli(&dir, &["anchor", "list"]),
        serde_json::json!([format!("{y}@[::1]:4501"), format!("{x}@10.0.0.1:4500")])
    );
    cli(&dir, &["anchor", "remove", &y]);
    assert!(!cli_raw(&dir, &["anchor", "remove", &y]).status.success());
    // The file is what the node reads, and private.
    let text = std::fs::read_to_string(dir.join("anchors.json")).unwrap();
    let list: Vec<String> = serde_json::from_str(&text).unwrap();
    assert_eq!(list, [format!("{x}@10.0.0.1:4500")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("anchors.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!cli_raw(&dir, &["anchor", "add", "nonsense"])
        .status
        .success());
}

/// The error of a command that must fail (`--json`: `{"error": {code,
/// message}}`).
fn error_of(dir: &Path, args: &[&str]) -> (String, String) {
    let out = cli_raw(dir, args);
    assert!(!out.status.success(), "distsoc-node {args:?} succeeded");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
            + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn an_unreachable_peer_is_named_with_its_address_and_the_timeout() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = init(root.path(), "a");
    let cfg = dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("connect_timeout_secs = 10"), "{text}");
    std::fs::write(
        &cfg,
        text.replace("connect_timeout_secs = 10", "connect_timeout_secs = 1"),
    )
    .unwrap();
    // Nothing answers on this port.
    let silent = free_addr();
    let target = format!("{}@{silent}", "ab".repeat(32));
    let (code, message) = error_of(&dir, &["connect", &target]);
    assert_eq!(code, "unreachable", "{message}");
    assert!(
        message.contains(&format!("cannot reach {} at {silent}", "ab".repeat(32))),
        "{message}"
    );
    assert!(message.contains("timed out after 1s"), "{message}");
    assert!(message.contains("connect_timeout_secs"), "{message}");
}

#[test]
fn hex_ids_and_anchors_are_taken_in_one_form_with_precise_errors() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = init(root.path(), "a");
    // A short id or a non-hex character: the message says what an id is.
    let (_, short) = error_of(&dir, &["follow", "abc"]);
    assert!(short.contains("64 hex digits, got 3 characters"), "{short}");
    let bad = format!("zz{}", "ab".repeat(31));
    let (_, nonhex) = error_of(&dir, &["follow", &bad]);
    assert!(
        nonhex.contains("64 hex digits (0-9, a-f): 'z' at position 0"),
        "{nonhex}"
    );
    // `profile set --anchor` takes a NodeId or a connect string; a connect
    // string is also remembered in anchors.json.
    let (x, y) = ("ab".repeat(32), "cd".repeat(32));
    cli(
        &dir,
        &[
            "profile",
            "set",
            "--name",
            "A",
            "--anchor",
            &format!("{x}@127.0.0.1:4500"),
            "--anchor",
            &y,
        ],
    );
    assert_eq!(
        cli(&dir, &["profile", "show"])["anchors"],
        serde_json::json!([x, y])
    );
    assert_eq!(
        cli(&dir, &["anchor", "list"]),
        serde_json::json!([format!("{x}@127.0.0.1:4500")])
    );
    let (_, wrong) = error_of(&dir, &["profile", "set", "--anchor", "abcd"]);
    assert!(wrong.contains("NodeId@host:port"), "{wrong}");
}
