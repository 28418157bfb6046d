//! `distsoc-anchor`: the high-capacity, always-on node operators run.
//!
//! What it will do: everything a node does with the anchor role, plus the
//! mailbox and 1:1 DM channels (`schema/mailbox.capnp`), bootstrap, the address
//! cache, an admin API and metrics, on PostgreSQL or embedded SQLite.
//!
//! What it does today: nothing yet — this crate reserves its place in the
//! workspace. The mailbox wire messages and their validation are already in
//! `distsoc_protocol::messages::mailbox`.
