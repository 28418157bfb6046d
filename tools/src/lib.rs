//! Library part of the `distsoc` command-line tool: the subcommands that are
//! tested as a library (the load generator, [`loadgen`]). The other
//! subcommands live in the binary (`src/main.rs`).

pub mod loadgen;
