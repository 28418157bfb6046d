//! The mesh end to end with real processes (issue 11, "Done means"): a
//! real anchor (SQLite, QUIC on 127.0.0.1) and `distsoc-node` binaries.
//!
//! Node B runs (`run`) with only the anchor's connect string and has a post.
//! Node A knows only the anchor's connect string too: `lookup <B>` finds B
//! through the anchor's map (tier `hop2`, B's advertised address), and
//! `connect <B>` — no address — pulls B's post. Node C's `follow <B>` does
//! the same in one step. B's `map` and `peers` read its status snapshot
//! (the anchor's slot class is `anchor`); once B is gone they say that no
//! node is running, and a lookup of B ends at the last tier (`bootstrapAnchor`): the anchor's
//! verified check-in cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::sign::SigningKey;
use serde_json::Value;

mod common;
use common::{cli, cli_raw, free_addr};

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
const BOUND: Duration = Duration::from_secs(30);

/// A node that knows only `anchor` (anchors.json), with rare background
/// sync and a status snapshot every second.
fn init(root: &Path, name: &str, anchor: &str) -> (PathBuf, SocketAddr) {
    let dir = root.join(name);
    let listen = free_addr();
    cli(&dir, &["init", "--listen", &listen.to_string()]);
    let cfg = dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("sync_interval_secs = 60", "sync_interval_secs = 3600")
        .replace("status_interval_secs = 10", "status_interval_secs = 1");
    assert!(text.contains("status_interval_secs = 1\n"), "{text}");
    std::fs::write(&cfg, text).unwrap();
    std::fs::write(
        dir.join("anchors.json"),
        serde_json::to_string(&[anchor]).unwrap(),
    )
    .unwrap();
    (dir, listen)
}

fn id(dir: &Path) -> String {
    cli(dir, &["id"])["node_id"].as_str().unwrap().to_string()
}

struct RunningNode(Child);

impl RunningNode {
    /// Stops it as an operator does (SIGTERM): it closes its connections.
    fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.0.wait();
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` until it returns `Some`; fails after [`BOUND`].
fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn anchor(root: &Path) -> (Anchor, String) {
    anchor_in(&root.join("anchor")).await
}

async fn anchor_in(data_dir: &Path) -> (Anchor, String) {
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: data_dir.to_path_buf(),
        drain_timeout: Duration::from_secs(5),
    };
    std::fs::create_dir_all(&opts.data_dir).unwrap();
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let cs = format!("{}@{}", key.node_id(), anchor.local_addr().unwrap());
    (anchor, cs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_knows_only_the_anchor_finds_and_pulls_a_stranger() {
    let root = tempfile::tempdir().unwrap();
    let (anchor, anchor_cs) = anchor(root.path()).await;

    // B: runs, knows only the anchor, has a public post.
    let (b_dir, b_listen) = init(root.path(), "b", &anchor_cs);
    let b_id = id(&b_dir);
    let b_node: NodeId = b_id.parse().unwrap();
    cli(&b_dir, &["post", "hello from B"]);
    let (child, _) = common::spawn_first_line(&b_dir, &["--json", "run"]);
    let b_run = RunningNode(child);
    let mesh = anchor.service.mesh().clone();
    until("the anchor to hold B in its mesh", || {
        mesh.peers()
            .iter()
            .any(|p| p.node_id == b_node)
            .then_some(())
    });

    // A: knows only the anchor; never given B's address.
    let (a_dir, _) = init(root.path(), "a", &anchor_cs);
    cli(&a_dir, &["follow", &b_id, "--offline"]);
    let found = cli(&a_dir, &["lookup", &b_id]);
    assert_eq!(found["found"], true, "{found}");
    assert_eq!(found["tier"], "hop2", "{found}");
    assert_eq!(found["addresses"][0], b_listen.to_string(), "{found}");
    assert!(found["elapsed_ms"].is_u64(), "{found}");

    let report = cli(&a_dir, &["connect", &b_id]);
    assert!(report["new_posts"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(report["found_by"], "hop2", "{report}");
    let feed = cli(&a_dir, &["feed"]);
    assert!(
        feed.as_array()
            .unwrap()
            .iter()
            .any(|i| i["text"] == "hello from B"),
        "{feed}"
    );

    // C: `follow` by id alone finds B and pulls.
    let (c_dir, _) = init(root.path(), "c", &anchor_cs);
    let followed = cli(&c_dir, &["follow", &b_id]);
    assert!(followed["new_posts"].as_u64().unwrap() >= 1, "{followed}");

    // A stranger nobody knows is not found: a clear failure.
    let out = cli_raw(&a_dir, &["lookup", &"ee".repeat(32)]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["found"], false, "{v}");

    // B's status snapshot: the map and the anchor's slot class.
    let map = until("B's snapshot to count the anchor", || {
        let out = cli_raw(&b_dir, &["map"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["hop1"].as_u64()? >= 1).then_some(v)
    });
    assert!(map["bytes"].as_u64().unwrap() > 0, "{map}");
    let anchor_hex = anchor_cs.split('@').next().unwrap().to_string();
    let peers = cli(&b_dir, &["peers"]);
    let entry = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node_id"] == anchor_hex.as_str())
        .unwrap_or_else(|| panic!("no anchor in {peers}"));
    assert_eq!(entry["class"], "anchor", "{peers}");

    // The anchor verified B's address by dialling back (its check-in).
    let counters = anchor.service.counters();
    until("the anchor to record B's check-in", || {
        (counters
            .checkins_written
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1)
            .then_some(())
    });

    // Once B is gone (a clean stop removes its snapshot; a crash leaves
    // one that goes stale) `map` says that no node runs.
    b_run.terminate();
    let err = until("`map` to report that no node runs", || {
        let out = cli_raw(&b_dir, &["map"]);
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    assert!(err.contains("no node is running"), "{err}");

    // B has left the mesh; the last tier, the anchor's address cache,
    // still knows where B announced it listens.
    until("the anchor's mesh to drop B", || {
        (!mesh.peers().iter().any(|p| p.node_id == b_node)).then_some(())
    });
    let cached = cli(&a_dir, &["lookup", &b_id]);
    assert_eq!(cached["tier"], "bootstrapAnchor", "{cached}");
    assert_eq!(cached["addresses"][0], b_listen.to_string(), "{cached}");
    anchor.stop(Duration::from_secs(2)).await;
}

/// The profile-anchor tier (§13.5): T checks in only with anchor A2 and
/// names A2 in its profile; D knows only anchor A1, which has never heard
/// of T, and the two anchors are not connected, so the mesh and D's own
/// anchor cannot find T. Once D holds T's profile (and, as after any
/// earlier contact, A2's address), `lookup T` dials A2 and finds T there,
/// tier `profileAnchor`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_asks_the_anchors_the_target_profile_names() {
    let root = tempfile::tempdir().unwrap();
    let (a1, a1_cs) = anchor_in(&root.path().join("a1")).await;
    let (a2, a2_cs) = anchor_in(&root.path().join("a2")).await;
    let (a2_id, a2_addr) = a2_cs.split_once('@').unwrap();

    // T: checks in with A2 only and says so in its profile.
    let (t_dir, t_listen) = init(root.path(), "t", &a2_cs);
    let t_id = id(&t_dir);
    cli(
        &t_dir,
        &["profile", "set", "--name", "T", "--anchor", a2_id],
    );
    let (child, _) = common::spawn_first_line(&t_dir, &["--json", "run"]);
    let _t_run = RunningNode(child);
    let counters = a2.service.counters();
    until("A2 to record T's check-in", || {
        (counters
            .checkins_written
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1)
            .then_some(())
    });

    // D: knows only A1. Without T's profile nothing finds T.
    let (d_dir, _) = init(root.path(), "d", &a1_cs);
    let out = cli_raw(&d_dir, &["lookup", &t_id]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!out.status.success(), "{v}");
    assert_eq!(v["found"], false, "{v}");

    // D learns T's profile (as from a pull) and A2's address (as from any
    // earlier contact with A2).
    {
        let t_node = distsoc_node::node::Node::open(&t_dir).unwrap();
        let t_posting = t_node.posting_key().unwrap().public();
        let profile = t_node
            .store()
            .get_profile(distsoc_protocol::ids::PostingId(t_posting))
            .unwrap()
            .unwrap();
        let d_node = distsoc_node::node::Node::open(&d_dir).unwrap();
        d_node.store().upsert_profile(&profile).unwrap();
        d_node
            .store()
            .upsert_peer(a2_id.parse().unwrap(), &[a2_addr.parse().unwrap()], true, 1)
            .unwrap();
    }
    let found = cli(&d_dir, &["lookup", &t_id]);
    assert_eq!(found["found"], true, "{found}");
    assert_eq!(found["tier"], "profileAnchor", "{found}");
    assert_eq!(found["addresses"][0], t_listen.to_string(), "{found}");
    a1.stop(Duration::from_secs(2)).await;
    a2.stop(Duration::from_secs(2)).await;
}
