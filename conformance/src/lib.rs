//! Golden vectors and the black-box wire conformance suite for distsoc
//! implementations.
//!
//! What this crate does:
//!
//! * [`vectors`] — generates the language-neutral golden vectors in
//!   `conformance/vectors/` ([`vectors::generate_all`], record format
//!   [`vectors::VectorFile`]); [`suite::offline`] checks them.
//! * [`suite`] — the black-box suite (like h2spec or Autobahn): a registry of
//!   wire cases with stable ids (`AREA-SECTION-NNN`), each quoting the
//!   requirement of `schema/README.md` or the `.capnp` doc comments it tests,
//!   run over real QUIC against any implementation given as
//!   `NodeId@host:port` and a role ([`suite::runner::run`]); reports as a
//!   console table, JSON, JUnit and HTML. The `distsoc-conformance` binary
//!   is its command line.
//!
//! What it does not do: it never judges a reply with `distsoc-protocol`'s
//! decoder or validated types. Replies are read with the suite's own frame
//! reader ([`suite::frame::RawFrame`]) and the generated readers of the
//! normative schema (`distsoc-schema`); `distsoc-protocol` is used only to
//! build valid inputs (signing keys and what the golden vectors pin), and
//! hostile inputs are hand-written bytes. It starts no implementation
//! itself: the target runs in its own process (or, in our tests, in-process).

pub(crate) mod refcrypto;
pub mod suite;
pub mod vectors;
