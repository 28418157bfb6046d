//! `distsoc` — the distsoc command-line tool.
//!
//! Subcommands: `devnet` (an anchor and three nodes on loopback, a scenario
//! walked through on screen, then the conformance suite against the anchor),
//! `demo` (a walk-through of the protocol core), `keys`
//! (generate / show Ed25519 identities), `inspect` (decode and validate a
//! framed message), `vectors` (list / regenerate the golden vectors),
//! `loadgen` (concurrent QUIC clients against an anchor: mailbox, FetchWait,
//! post ingest, with throughput and latency percentiles), `sim` (the mesh
//! simulator of `distsoc-sim`: `sim graph`, the graph-level model, and
//! `sim discovery`, the message-level one).

/// `println!` that ends the program quietly when stdout is a closed pipe
/// (`distsoc vectors list | head -1`), where `println!` would panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::print_line(format_args!($($arg)*))
    };
}

mod demo;
mod devnet;
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
    /// Start a local network (an anchor on SQLite and three nodes on
    /// 127.0.0.1), walk through profiles, follows, public and circle posts, a
    /// DM to an offline node through the anchor and pull on reconnect,
    /// checking every step; then run the conformance suite against the anchor.
    Devnet(devnet::DevnetArgs),
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
    /// Run the mesh simulator (the same commands as `distsoc-sim`): `graph`
    /// measures map sizes and worm routing on up to 2×10⁹ nodes;
    /// `discovery` runs real mesh states over a simulated network.
    #[command(subcommand)]
    Sim(distsoc_sim::cli::SimCommand),
}

/// mimalloc, as in `distsoc-sim`: the simulator under `distsoc sim` runs as
/// fast as there (the other commands do not depend on the allocator).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    #[cfg(unix)]
    if matches!(cli.command, Command::Sim(_)) {
        distsoc_sim::keep_freed_pages();
    }
    match cli.command {
        Command::Devnet(a) => devnet::run(a),
        Command::Demo => demo::run(),
        Command::Keys(c) => keys::run(c),
        Command::Inspect(a) => inspect::run(a),
        Command::Vectors(c) => vectors::run(c),
        Command::Loadgen(a) => Ok(loadgen::main(*a)?),
        Command::Sim(c) => Ok(distsoc_sim::cli::run(c)?),
    }
}

/// Writes one line to stdout; a closed pipe ends the program with success
/// (the reader has what it wanted), any other error with a message.
fn print_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}
