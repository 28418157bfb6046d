//! Offline mode: every golden vector in `conformance/vectors/` checked.
