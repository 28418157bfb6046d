//! Validated domain types for every wire message, one module per schema file.
//!
//! Each type implements [`crate::codec::Struct`] (and top-level messages
//! [`crate::codec::WireMessage`]); [`Message`] is the sum of all top-level
//! messages, decoded from a frame by its code.

pub mod any;
pub mod common;
pub mod content;
pub mod discovery;
pub mod files;
pub mod identity;
pub mod mailbox;
pub mod signed;
pub mod social;
pub mod stored;
#[cfg(test)]
mod testutil;
pub mod wire;

pub use any::{EncodeReply, Message, ReplyOf};
