//! The distsoc wire schema: the normative Cap'n Proto definitions in
//! `schema/*.capnp` and their generated Rust bindings.
//!
//! This crate is deliberately tiny — it depends only on the `capnp` runtime — so
//! that another implementation, a tool or a test harness can speak the wire format
//! without pulling in QUIC, SQL or tokio. It contains no validation and no
//! protocol logic: the readers here are unchecked views of untrusted bytes.
//! `distsoc-protocol` converts them into validated domain types at the edge.
//!
//! Each module is generated from the schema file of the same name by `build.rs`
//! (see `schema/README.md` for the message-code table, framing, canonical form
//! and the rules for evolving the schema). The generated sources are committed
//! under `schema/generated/` so that building needs no `capnp` tool.

/// Common types and protocol constants (`schema/common.capnp`).
#[allow(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod common_capnp {
    include!("generated/common_capnp.rs");
}

/// Message codes, Hello exchange, Ack and Error (`schema/wire.capnp`).
#[allow(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod wire_capnp {
    include!("generated/wire_capnp.rs");
}

/// Posts, visibility, headers, comments, deletes (`schema/content.capnp`).
#[allow(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod content_capnp {
    include!("generated/content_capnp.rs");
}

/// Profiles, posting identities, groups, vouches, identity bundle (`schema/identity.capnp`).
#[allow(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod identity_capnp {
    include!("generated/identity_capnp.rs");
}

/// Layer 1 discovery: map gossip, worm, address, bootstrap (`schema/discovery.capnp`).
#[allow(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod discovery_capnp {
    include!("generated/discovery_capnp.rs");
}

/// Layer 2 files and content routing (`schema/files.capnp`).
#[allow(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod files_capnp {
    include!("generated/files_capnp.rs");
}

/// Layer 3 social messages and author-signed updates (`schema/social.capnp`).
#[allow(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod social_capnp {
    include!("generated/social_capnp.rs");
}

/// Anchor mailbox and 1:1 DM channels (`schema/mailbox.capnp`).
#[allow(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod mailbox_capnp {
    include!("generated/mailbox_capnp.rs");
}
