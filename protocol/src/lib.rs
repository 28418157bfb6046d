//! Sans-IO core of the distsoc protocol.
//!
//! What it does: ids ([`ids`]), the message-code registry ([`codes`]), the
//! connection rules after TLS (Hello first, version selection, the
//! simultaneous-dial tie-break, close codes: [`conn`]), framing
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
//! caller, so the node, the anchor (and the mesh simulator the next issues
//! plan) run the same code, and
//! every function is deterministic under test.
//!
//! # Secrets and how they are wiped
//!
//! Every type that holds secret key material wipes it when dropped
//! (`zeroize`), and its `Debug` prints no secret:
//!
//! | type | holds | wiped by |
//! |---|---|---|
//! | [`sign::SigningKey`] | an Ed25519 seed (network or posting key) | ed25519-dalek's `ZeroizeOnDrop`; seeds handed out as `Zeroizing` |
//! | [`envelope::Cek`] | a content-encryption key | `ZeroizeOnDrop`; KEKs, X25519 secrets and unwrapped CEKs are `Zeroizing` |
//! | [`fof::VouchKey`] | a friend-of-friend vouch key | `ZeroizeOnDrop` |
//! | the HMAC-SHA256 state keyed with a vouch key ([`fof`]) | two SHA-256 states derived from the key | SHA-256 states that wipe on drop; padded key blocks and the inner hash in `Zeroizing` |
//! | [`messages::identity::PostingIdentity`], [`messages::identity::GroupKey`], [`messages::identity::IdentityBundle`] | posting, group and network seeds, vouch keys | `Zeroizing` fields; [`messages::identity::IdentityBundle::canonical_bytes`] also scrubs its Cap'n Proto builders |
//! | [`passphrase`] keys and opened bundles | the Argon2id key, bundle plaintext | `Zeroizing` |
//! | the plaintext `PostBody` of an encrypted post or DM | content | [`codec::canonical_secret`] / [`codec::from_canonical_secret`]: builder, canonical and reader buffers wiped before they are freed |
//!
//! Decoded plaintext handed to the caller (a `PostBody` returned by
//! `Post::open`) is the caller's to keep or drop.
//!
//! # Cap'n Proto types in the public API
//!
//! Callers work with domain types and bytes: canonical bytes
//! ([`codec::canonical_of`], [`codec::from_canonical`]), frames
//! ([`messages::Message::to_frame`] / [`messages::Message::from_frame`],
//! [`codec::to_frame`] / [`codec::from_frame`] for one message type,
//! [`frame::decode_frame`]) and [`error::DecodeError`]. The generated
//! reader/builder plumbing is crate-private: the bounded field readers of
//! [`codec`] (`id`, `bytes`, `text`, `list`, ...), `codec::build`,
//! `messages::common::write_roles`, `frame::encode_frame` (any `capnp`
//! builder) and `Message::decode` / `encode` (a generated reader / builder).
//! What still names `capnp` or `distsoc_schema`
//! types in a public signature, and why:
//!
//! * [`codec::Struct`] (`read`/`write` over the generated reader/builder) and
//!   [`codec::WireMessage`]: every message type implements them, and callers
//!   use them as bounds of the canonical-bytes and frame wrappers; the
//!   conformance generators also compare their own raw builds against
//!   `write`. A sealed trait is the next step once those comparisons go
//!   through canonical bytes.
//! * [`frame::Frame::reader`] / `into_reader`, [`codec::read_message`],
//!   [`canonical::canonical_bytes`]: for a runtime or a test suite that
//!   reads a frame's Cap'n Proto message itself (the conformance suite
//!   inspects raw replies); the framing layer's input and output are Cap'n
//!   Proto messages by definition (schema/README.md §2).
//! * `to_wire` / `from_wire` of the enums that mirror the schema
//!   ([`error::ErrorCode`], [`messages::common::Role`], ...): the mapping
//!   itself, used by tests and by callers that read raw replies.
//! * `From<capnp::Error>` for [`error::DecodeError`] and
//!   [`frame::FrameError`], [`limits::reader_options`]: a runtime that reads
//!   a message itself must read it with these limits.
//!
//! **Architecture Invariant:** nothing in this crate performs I/O or reads the
//! clock; untrusted bytes become domain types only through [`codec`] and
//! [`frame`], which bound every length before allocating.

pub mod canonical;
pub mod codec;
pub mod codes;
pub mod conn;
pub mod dm_rotation;
pub mod envelope;
pub mod error;
pub mod fof;
pub mod frame;
pub mod ids;
pub mod keep;
pub mod limits;
pub mod mesh;
pub mod messages;
pub mod passphrase;
pub mod recent;
pub mod request;
pub mod sign;
pub mod sync;
