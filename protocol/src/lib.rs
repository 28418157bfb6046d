//! Sans-IO core of the distsoc protocol.
//!
//! What it does: ids ([`ids`]), the message-code registry ([`codes`]), framing
//! ([`frame`]) and limits ([`limits`]), canonical Cap'n Proto encoding
//! ([`canonical`]), validated domain types for every wire message ([`codec`],
//! [`messages`]), ed25519 signatures with domain separation ([`sign`]), envelope
//! encryption ([`envelope`]), friend-of-friend vouch crypto ([`fof`]), passphrase
//! sealing of identity bundles ([`passphrase`]), and the pure decision functions
//! of the protocol (the pull-sync filter, file keep priority, the
//! `author_recent_posts` seq rule: [`sync`], [`keep`], [`recent`]).
//!
//! What it does not do: no sockets, no tokio, no clock, no global random number
//! generator, no storage. Time (`now_ms`) and randomness are passed in by the
//! caller, so the node, the anchor and the mesh simulator run the same code, and
//! every function is deterministic under test.
//!
//! **Architecture Invariant:** nothing in this crate performs I/O or reads the
//! clock; untrusted bytes become domain types only through [`codec`] and
//! [`frame`], which bound every length before allocating.

pub mod canonical;
pub mod codec;
pub mod codes;
pub mod envelope;
pub mod error;
pub mod fof;
pub mod frame;
pub mod ids;
pub mod keep;
pub mod limits;
pub mod messages;
pub mod passphrase;
pub mod recent;
pub mod sign;
pub mod sync;
