//! A `distsoc-node run` process killed with SIGKILL and restarted on the
//! same data directory and port is reached again at once: the restarted
//! process resets its peers' stale connections (the stateless-reset key is
//! derived from the node key), so a client's next request redials instead of
//! hanging until its idle timeout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use distsoc_net::transport::{
    Handler, HandlerFuture, RequestCtx, RequestError, Transport, TransportConfig,
};
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ConnectString, Host, NodeId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::social::PullSyncRequest;
use distsoc_protocol::messages::{wire, Message};
use distsoc_protocol::sign::SigningKey;

mod common;
use common::BIN;

struct Proc {
    child: Child,
    id: NodeId,
    addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `distsoc-node run` on `listen`; reads the connect string it prints.
fn spawn(dir: &Path, listen: SocketAddr) -> Proc {
    let (child, line) = common::spawn_first_line(dir, &["run", "--listen", &listen.to_string()]);
    let cs: ConnectString = line
        .trim()
        .trim_start_matches("listening: ")
        .parse()
        .unwrap_or_else(|e| panic!("node printed {line:?}: {e}"));
    let Host::Ip(ip) = cs.host else {
        panic!("expected an IP connect string, got {line:?}");
    };
    Proc {
        child,
        id: cs.node_id,
        addr: SocketAddr::new(ip, cs.port),
    }
}

/// The client serves nothing.
struct Refuse;

impl Handler for Refuse {
    fn handle<'a>(&'a self, _ctx: RequestCtx, _msg: Message) -> HandlerFuture<'a> {
        Box::pin(async { Err(wire::Error::new(ErrorCode::UnknownMessage, 0, "client")) })
    }
}

/// One pull request the way a long-running client makes it: on the live
/// connection if there is one, else on a new one.
async fn pull_once(client: &Transport, node: NodeId, addr: SocketAddr) -> Result<(), String> {
    let peer = client
        .connect(node, addr)
        .await
        .map_err(|e| e.to_string())?;
    let request = PullSyncRequest {
        version: PROTOCOL_VERSION,
        ids: Vec::new(),
        since_seq: 0,
        limit: 1,
    };
    match peer.call(request).await {
        Ok(_) => Ok(()),
        Err(RequestError::Closed(reason)) => Err(format!("closed: {reason}")),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn restarted_node_is_reconnected_to_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success(), "init: {out:?}");
    let first = spawn(dir.path(), "127.0.0.1:0".parse().unwrap());
    let (node, addr) = (first.id, first.addr);
    let client = Transport::bind(
        &SigningKey::generate(&mut rand_core::OsRng),
        TransportConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..TransportConfig::default()
        },
        Arc::new(Refuse),
    )
    .unwrap();
    pull_once(&client, node, addr).await.unwrap();

    drop(first); // SIGKILL: no CONNECTION_CLOSE reaches the client.
    let second = spawn(dir.path(), addr);
    assert_eq!((second.id, second.addr), (node, addr));

    let started = Instant::now();
    let mut failed = Vec::new();
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(30), pull_once(&client, node, addr))
            .await
            .unwrap_or_else(|_| Err("no answer within 30 s".into()));
        match attempt {
            Ok(()) => break,
            Err(e) => failed.push(e),
        }
        assert!(failed.len() < 3, "{failed:?}");
    }
    let took = started.elapsed();
    println!("reconnected {took:?} after the restart; failed first: {failed:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {failed:?}");
    assert!(failed.len() <= 1, "{failed:?}");
}
