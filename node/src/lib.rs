//! `distsoc-node`: the lightweight user node (desktop or phone class).
//!
//! What it will do: run a QUIC endpoint (quinn + tokio, ALPN `distsoc/2`,
//! NodeId pinned in the handshake), keep an embedded SQLite store, and provide
//! posting, following, circles, DMs and personas on top of `distsoc-protocol`.
//!
//! What it does today: nothing yet — this crate reserves its place in the
//! workspace. The protocol rules it will run (framing, validation, signatures,
//! envelopes, the pull filter, keep priority, the seq rule) already live in
//! `distsoc-protocol`, which is where to look now.
