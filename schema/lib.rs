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

/// The annotations that state the wire limits (`schema/annotations.capnp`);
/// their values are collected in [`limits`].
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
pub mod annotations_capnp {
    include!("generated/annotations_capnp.rs");
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

/// The wire limits as data: every field limit and the message-code table,
/// generated from the annotations of `schema/annotations.capnp` (the same
/// tables, language-neutral, are in `schema/generated/limits.json`).
///
/// These are the specification's numbers, not an implementation's: a
/// conforming receiver refuses a value over a field limit with `tooLarge`
/// (`malformed` for a wrong `exactBytes` length) and a frame over its code's
/// cap with `tooLarge`.
pub mod limits {
    /// Which limit an annotation states (the annotation's name in
    /// `schema/annotations.capnp`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum LimitKind {
        /// `$maxBytes`: largest length of a `Data` or `Text` field, in bytes.
        MaxBytes,
        /// `$exactBytes`: the one length a present `Data` field may have.
        ExactBytes,
        /// `$maxItems`: most elements of a `List` field.
        MaxItems,
        /// `$maxItemBytes`: largest length of each element of a
        /// `List(Text)` or `List(Data)` field, in bytes.
        MaxItemBytes,
    }

    impl LimitKind {
        /// The annotation's name in the schema, e.g. `maxBytes`.
        pub const fn name(self) -> &'static str {
            match self {
                LimitKind::MaxBytes => "maxBytes",
                LimitKind::ExactBytes => "exactBytes",
                LimitKind::MaxItems => "maxItems",
                LimitKind::MaxItemBytes => "maxItemBytes",
            }
        }
    }

    /// One annotated limit of one field.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct FieldLimit {
        /// Schema file declaring the struct, e.g. `content.capnp`.
        pub file: &'static str,
        /// The struct's name inside the file (a group: `Outer.group`).
        pub struct_name: &'static str,
        /// The field's name as in the schema.
        pub field: &'static str,
        /// Which limit.
        pub kind: LimitKind,
        /// The limit: bytes or elements, per [`LimitKind`].
        pub value: u64,
    }

    /// The role of a message on its stream (`$kind` of a code constant).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum MessageKind {
        /// Opens a bidirectional stream; answered by its response or Error.
        Request,
        /// Answers a request, or a push on a bidirectional stream.
        Response,
        /// One-way information.
        Push,
    }

    impl MessageKind {
        /// Lower-case name as in the schema: `request`, `response`, `push`.
        pub const fn name(self) -> &'static str {
            match self {
                MessageKind::Request => "request",
                MessageKind::Response => "response",
                MessageKind::Push => "push",
            }
        }
    }

    /// One row of the message-code table (a `code*` constant of
    /// `wire.capnp` and its annotations).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct MessageCodeInfo {
        /// The code byte that starts the frame.
        pub code: u8,
        /// The message's name (the constant's name without `code`).
        pub name: &'static str,
        /// The Cap'n Proto root struct of the message.
        pub root: &'static str,
        /// Request, response or push.
        pub kind: MessageKind,
        /// For a request, the code of its success response.
        pub response: Option<u8>,
        /// Largest framed message in bytes (segment table + segments, the
        /// code byte excluded).
        pub frame_cap: u32,
    }

    /// The row of `code` in [`MESSAGE_CODES`]; `None` for an unassigned code.
    pub fn message_code(code: u8) -> Option<&'static MessageCodeInfo> {
        MESSAGE_CODES.iter().find(|c| c.code == code)
    }

    /// The row of the message named `name` (e.g. `"PushPost"`).
    pub fn message_named(name: &str) -> Option<&'static MessageCodeInfo> {
        MESSAGE_CODES.iter().find(|c| c.name == name)
    }

    /// The annotated limit of `kind` on `struct_name.field`, if any.
    pub fn field_limit(struct_name: &str, field: &str, kind: LimitKind) -> Option<u64> {
        FIELD_LIMITS
            .iter()
            .find(|l| l.struct_name == struct_name && l.field == field && l.kind == kind)
            .map(|l| l.value)
    }

    include!("generated/limits.rs");
}
