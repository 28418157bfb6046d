//! Validated domain types for every wire message, one module per schema file.
//!
//! Each type implements [`crate::codec::Struct`] (and top-level messages
//! [`crate::codec::WireMessage`]); [`Message`] is the sum of all top-level
//! messages, decoded from a frame by its code.

pub mod common;
pub mod signed;
pub mod wire;
