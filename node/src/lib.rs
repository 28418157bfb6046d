//! `distsoc-node`: the lightweight user node (desktop or phone class), as a
//! library and the `distsoc-node` binary.
//!
//! What it does: the node's services on the shared QUIC runtime
//! (`distsoc-net`: endpoint, pinned identities, Hello, dispatcher, key file);
//! an embedded SQLite store with versioned migrations
//! ([`store`]); the node services built on `distsoc-protocol`; and the client
//! of an anchor's mailbox and 1:1 DM channels ([`dm`]); its part of the
//! mesh ([`mesh`]: slots, bootstrap, lookups, the status snapshot) on the
//! driver of `distsoc_net::mesh`.
//!
//! What it does not do: decide protocol rules. Validation, signatures,
//! envelopes, the pull filter and the other decisions are `distsoc-protocol`'s;
//! this crate does the I/O around them.

pub mod archive;
pub mod bundle;
pub mod compose;
pub mod config;
pub mod dm;
pub mod dm_group;
pub mod dm_persona;
pub mod error;
pub mod feed;
pub mod mesh;
pub mod node;
pub mod persona;
pub mod ratelimit;
pub mod reply;
pub mod rotation;
pub mod service;
pub mod store;
