//! `distsoc-net`: the QUIC/TLS runtime every distsoc role shares (user node,
//! anchor, conformance runner, tools).
//!
//! What it does:
//! * [`transport`]: one quinn endpoint per process (one ALPN, `distsoc/2`)
//!   with the NodeId pinned in the TLS handshake both ways ([`transport::tls`]),
//!   one connection per peer, the Hello exchange, per-connection and
//!   per-endpoint memory and time bounds, the connection slot table and the
//!   stream dispatcher that hands each decoded message to the role's
//!   [`Handler`](transport::Handler);
//! * [`Peer`](transport::Peer): the client side of a connection — requests,
//!   pushes, raw frames for hostile tests;
//! * [`mesh`]: the mesh driver — one sans-IO `distsoc_protocol::mesh::Mesh`
//!   run over the transport (connections, mesh pushes and requests, the
//!   timer, dials, lookups), shared by the user node and the anchor;
//! * [`identity`]: the network key file (`node.key`, 0600, never logged);
//! * [`datadir`]: private (0600/0700) files and directories and the
//!   data-directory lock;
//! * [`operator`]: what the binaries share with operators — log set-up
//!   (text without colour codes off a terminal, or JSON lines) and
//!   configuration files with a comment above every key;
//! * [`clock`]: the wall clock ([`now_ms`]) and the process shutdown signal
//!   ([`shutdown_signal`]).
//!
//! What it does not do: decide protocol rules (validation, signatures,
//! limits, codes and the canonical encoding are `distsoc-protocol`'s), store
//! anything beyond the key file (no database: the roles bring their own),
//! or serve any message itself — every request and push is answered by the
//! handler a role registers.

pub mod clock;
pub mod datadir;
pub mod identity;
pub mod mesh;
pub mod operator;
pub mod transport;

pub use clock::{now_ms, shutdown_signal};
