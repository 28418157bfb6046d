//! Client scaffolding shared by the anchor's integration tests: a QUIC client
//! endpoint with its own identity that refuses anything sent to it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use distsoc_net::transport::{
    Handler, HandlerFuture, Peer, RequestCtx, RequestError, Transport, TransportConfig,
    TransportError,
};
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ChannelId, NodeId};
use distsoc_protocol::messages::mailbox::CreateChannel;
use distsoc_protocol::messages::{wire, Message};
use distsoc_protocol::sign::SigningKey;

/// 127.0.0.1, any port.
pub const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// A client serves nothing: every request to it is refused.
pub struct Refuse;

impl Handler for Refuse {
    fn handle<'a>(&'a self, _ctx: RequestCtx, _msg: Message) -> HandlerFuture<'a> {
        Box::pin(async { Err(wire::Error::new(ErrorCode::UnknownMessage, 0, "client")) })
    }
}

/// A fresh identity bound to `local`, connected to the anchor `anchor` at
/// `addr`: (endpoint — keep it alive, connection, the client's NodeId).
pub async fn connect(
    anchor: NodeId,
    addr: SocketAddr,
    local: SocketAddr,
) -> (Transport, Peer, NodeId) {
    connect_as(
        &SigningKey::generate(&mut rand_core::OsRng),
        anchor,
        addr,
        local,
    )
    .await
}

/// Like [`connect`], with the identity `key`.
pub async fn connect_as(
    key: &SigningKey,
    anchor: NodeId,
    addr: SocketAddr,
    local: SocketAddr,
) -> (Transport, Peer, NodeId) {
    let (t, peer) = try_connect_as(key, anchor, addr, local).await;
    (t, peer.unwrap(), NodeId(key.public()))
}

/// Like [`connect_as`], returning the connection error (the endpoint is
/// returned either way, to keep it alive or retry).
pub async fn try_connect_as(
    key: &SigningKey,
    anchor: NodeId,
    addr: SocketAddr,
    local: SocketAddr,
) -> (Transport, Result<Peer, TransportError>) {
    let t = Transport::bind(
        key,
        TransportConfig {
            listen: local,
            ..Default::default()
        },
        Arc::new(Refuse),
    )
    .unwrap();
    let peer = t.connect(anchor, addr).await;
    (t, peer)
}

/// `CreateChannel(other)` on `peer`: the channel id.
pub async fn create_channel(peer: &Peer, other: NodeId) -> ChannelId {
    peer.call(CreateChannel {
        version: 2,
        peer: other,
    })
    .await
    .unwrap()
    .channel_id
}

/// The wire error code of a refused request (panics on anything else).
pub fn code<T: std::fmt::Debug>(r: Result<T, RequestError>) -> ErrorCode {
    match r {
        Err(RequestError::Remote(e)) => e.code,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

/// A running anchor for integration tests: SQLite in a temp dir (or `store`
/// when given), QUIC on 127.0.0.1, admin API off, metrics off unless
/// `metrics_listen` differs from the default.
pub struct TestAnchor {
    /// Keeps the data directory alive.
    pub dir: tempfile::TempDir,
    /// The anchor.
    pub anchor: distsoc_anchor::run::Anchor,
    /// Its NodeId.
    pub id: NodeId,
    /// Its QUIC address.
    pub addr: SocketAddr,
}

/// Starts an anchor with `cfg` (listen, admin and metrics overridden).
pub async fn start_anchor(cfg: distsoc_anchor::config::AnchorConfig) -> TestAnchor {
    let dir = tempfile::tempdir().unwrap();
    let key = distsoc_net::identity::NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let opts = distsoc_anchor::run::RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: std::time::Duration::from_secs(5),
    };
    let metrics_listen =
        if cfg.metrics_listen == distsoc_anchor::config::AnchorConfig::default().metrics_listen {
            String::new()
        } else {
            cfg.metrics_listen.clone()
        };
    let cfg = distsoc_anchor::config::AnchorConfig {
        listen: LOOPBACK,
        admin_listen: String::new(),
        metrics_listen,
        ..cfg
    };
    let anchor = distsoc_anchor::run::Anchor::start(&key, &cfg, &opts)
        .await
        .unwrap();
    let addr = anchor.local_addr().unwrap();
    TestAnchor {
        dir,
        anchor,
        id: key.node_id(),
        addr,
    }
}

/// An endpoint of identity `key` listening on 127.0.0.1 and announcing
/// that address in its Hello (a node the anchor can dial back), connected
/// to the anchor: (endpoint, connection, the announced address).
pub async fn listening_as(
    key: &SigningKey,
    anchor: NodeId,
    addr: SocketAddr,
) -> (Transport, Peer, SocketAddr) {
    let t = listening_endpoint(key, None);
    let at = t.local_addr().unwrap();
    let peer = t.connect(anchor, addr).await.unwrap();
    (t, peer, at)
}

/// An endpoint of identity `key` on 127.0.0.1 that announces `announce`
/// (default: its own bound address) and serves nothing.
pub fn listening_endpoint(key: &SigningKey, announce: Option<Vec<SocketAddr>>) -> Transport {
    // Reserve a port, then bind the endpoint on it (announced before bind).
    let port = std::net::UdpSocket::bind(LOOPBACK)
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    Transport::bind(
        key,
        TransportConfig {
            listen: at,
            listen_addresses: announce.unwrap_or_else(|| vec![at]),
            ..Default::default()
        },
        Arc::new(Refuse),
    )
    .unwrap()
}

/// A `distsoc-anchor run` process (killed when dropped).
pub struct AnchorProc {
    /// The process.
    pub child: std::process::Child,
    /// Its NodeId.
    pub id: NodeId,
    /// Its QUIC address.
    pub addr: SocketAddr,
}

impl Drop for AnchorProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `distsoc-anchor --data-dir DIR run ARGS…` (admin API and metrics
/// off, `RUST_LOG=warn`) and reads the connect string it prints on stdout
/// once it is serving.
pub fn spawn_anchor_process(dir: &std::path::Path, args: &[&str]) -> AnchorProc {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_distsoc-anchor"))
        .arg("--data-dir")
        .arg(dir)
        .arg("run")
        .args(args)
        .args(["--admin-listen", "", "--metrics-listen", ""])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let cs: distsoc_protocol::ids::ConnectString = line
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("anchor printed {line:?}: {e}"));
    let distsoc_protocol::ids::Host::Ip(ip) = cs.host else {
        panic!("expected an IP connect string, got {line:?}");
    };
    AnchorProc {
        child,
        id: cs.node_id,
        addr: SocketAddr::new(ip, cs.port),
    }
}
