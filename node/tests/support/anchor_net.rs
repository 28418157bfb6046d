//! A real anchor (SQLite store in a temp dir, QUIC on 127.0.0.1) and node
//! data directories beside it, for the DM tests that drive the binary.
//! Included with `#[path = "support/anchor_net.rs"] mod anchor_net;` next to
//! `mod common;`.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_protocol::sign::SigningKey;
use serde_json::Value;

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

pub struct Net {
    pub dir: tempfile::TempDir,
    key: NetworkKey,
    anchor: Option<Anchor>,
    addr: SocketAddr,
}

impl Net {
    pub async fn start() -> Net {
        let dir = tempfile::tempdir().unwrap();
        let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
        let cfg = AnchorConfig {
            listen: LOOPBACK,
            admin_listen: String::new(),
            metrics_listen: String::new(),
            ..AnchorConfig::default()
        };
        let opts = RunOptions {
            data_dir: dir.path().join("anchor"),
            drain_timeout: Duration::from_secs(5),
        };
        std::fs::create_dir_all(&opts.data_dir).unwrap();
        let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
        let addr = anchor.local_addr().unwrap();
        Net {
            dir,
            key,
            anchor: Some(anchor),
            addr,
        }
    }

    pub fn anchor_cs(&self) -> String {
        format!("{}@{}", self.key.node_id(), self.addr)
    }

    /// The anchor's SQLite database, opened beside the running anchor.
    pub fn anchor_db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.dir.path().join("anchor/anchor.sqlite")).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c
    }

    pub async fn stop(mut self) {
        if let Some(a) = self.anchor.take() {
            a.stop(Duration::from_secs(5)).await;
        }
    }

    /// A node initialised by the binary; returns its directory and NodeId.
    pub async fn node(&self, name: &str) -> (PathBuf, String) {
        let dir = self.dir.path().join(name);
        let v = run(&dir, &["init", "--listen", "127.0.0.1:0"]).await;
        (dir, v["node_id"].as_str().unwrap().to_string())
    }

    /// `dm ARGS… --anchor THIS`, which must succeed.
    pub async fn dm(&self, dir: &Path, args: &[&str]) -> Value {
        let mut all = vec!["dm"];
        all.extend_from_slice(args);
        let cs = self.anchor_cs();
        all.extend_from_slice(&["--anchor", &cs]);
        run(dir, &all).await
    }
}

/// `distsoc-node --data-dir DIR --json ARGS…`, which must succeed, off the
/// runtime's threads (the anchor runs on them).
pub async fn run(dir: &Path, args: &[&str]) -> Value {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::common::cli(&dir, &args)
    })
    .await
    .unwrap()
}

/// `dm history PEER [ARGS…]`: (outgoing, text), oldest first.
pub async fn history(dir: &Path, peer: &str, args: &[&str]) -> Vec<(bool, String)> {
    let mut all = vec!["dm", "history", peer, "--limit", "1000"];
    all.extend_from_slice(args);
    run(dir, &all)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["outgoing"].as_bool().unwrap(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
