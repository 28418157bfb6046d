//! `distsoc-sim` — the distsoc mesh simulator (same commands as
//! `distsoc sim`).

use clap::Parser;
use distsoc_sim::cli::SimCommand;

/// The distsoc mesh simulator.
#[derive(Debug, Parser)]
#[command(name = "distsoc-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: SimCommand,
}

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The message-level simulator allocates and frees millions of message
/// buffers per simulated minute; mimalloc spends a fraction of glibc
/// malloc's time on them (the simulation itself is unchanged).
#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    let cli = Cli::parse();
    #[cfg(all(unix, not(feature = "dhat-heap")))]
    distsoc_sim::keep_freed_pages();
    match distsoc_sim::cli::run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("distsoc-sim: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
