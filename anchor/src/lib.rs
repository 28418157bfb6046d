//! `distsoc-anchor`: the high-capacity, always-on node operators run.
//!
//! An anchor does everything a node does with the anchor role, plus the
//! mailbox and 1:1 DM channels (`schema/mailbox.capnp`, `schema/README.md`
//! §9), bootstrap, the address cache, store-and-forward with pull sync, an
//! admin API and metrics — on PostgreSQL or embedded SQLite.
//!
//! * [`store`] — the storage layer: one interface ([`store::AnchorStore`]),
//!   two backends (SQLite by default, PostgreSQL for production and for
//!   several anchor processes on one database), one shared test suite.
//! * [`quota`] — per-author and per-depositor deposit quotas (in memory,
//!   seeded from the store at start).
//! * [`ingest`] — deposited posts validated off the network threads, the
//!   signatures of concurrent deposits verified in one batch.
//! * [`verify`] — check-in: announced addresses verified by a dial-back
//!   with the NodeId pinned before they are handed out.
//! * [`admin`] — the admin gRPC API and gRPC health (`proto/admin.proto`);
//!   [`metrics`] — Prometheus `GET /metrics`. Both unauthenticated, on
//!   loopback by default. [`admin_client`] — `distsoc-anchor admin …`.
//!
//! The mailbox wire messages and their validation are in
//! `distsoc_protocol::messages::mailbox`.

pub mod admin;
pub mod admin_client;
pub mod config;
pub mod error;
pub mod ingest;
pub mod metrics;
mod operator;
pub mod quota;
pub mod ratelimit;
pub mod run;
pub mod service;
pub mod store;
pub mod verify;
