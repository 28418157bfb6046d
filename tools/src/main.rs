//! `distsoc` — the distsoc command-line tool.
//!
//! Subcommands: `demo` (a walk-through of the protocol core), `keys`
//! (generate / show Ed25519 identities), `inspect` (decode and validate a
//! framed message), `vectors` (list / regenerate the golden vectors),
//! `loadgen` (concurrent QUIC clients against an anchor: mailbox, FetchWait,
//! post ingest, with throughput and latency percentiles). The mesh simulator
//! is not written yet.

mod demo;
mod inspect;
mod keys;
mod vectors;

use clap::{Parser, Subcommand};
use distsoc_tools::loadgen;

/// The distsoc command-line tool.
#[derive(Debug, Parser)]
#[command(name = "distsoc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Walk through the protocol core: identities, posts, envelopes, frames,
    /// friend-of-friend comments — everything local, nothing to set up.
    Demo,
    /// Generate or show Ed25519 identity key files.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Decode a framed message (code byte + Cap'n Proto stream framing) and
    /// print the validated message or the typed error a peer would get.
    Inspect(inspect::InspectArgs),
    /// List or regenerate the golden vector files.
    #[command(subcommand)]
    Vectors(vectors::VectorsCommand),
    /// Load an anchor with many concurrent QUIC clients (mailbox, fetchwait,
    /// ingest or mixed) and report throughput and latency per operation.
    Loadgen(Box<loadgen::LoadgenArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => demo::run(),
        Command::Keys(c) => keys::run(c),
        Command::Inspect(a) => inspect::run(a),
        Command::Vectors(c) => vectors::run(c),
        Command::Loadgen(a) => Ok(loadgen::main(*a)?),
    }
}
