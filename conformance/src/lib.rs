//! Golden vectors and (in a later release) the black-box wire conformance suite
//! for distsoc implementations.
//!
//! The vectors live as language-neutral JSON in `conformance/vectors/`; this crate
//! holds the code that *generates* them ([`vectors::generate_all`]) and the record
//! format ([`vectors::VectorFile`]). Checking them against our implementation is done
//! by `distsoc-protocol`'s tests; other implementations read the JSON directly.

pub mod suite;
pub mod vectors;
