//! `distsoc-anchor`: run a distsoc anchor — an always-on node with the mailbox
//! and 1:1 DM channels, check-in/address cache, bootstrap and pull sync —
//! on embedded SQLite (default) or PostgreSQL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{run_anchor, RunOptions};
use distsoc_net::datadir::{create_private_dir, write_new_private_file, DataDirLock};
use distsoc_net::identity::{NetworkKey, KEY_FILE};
use distsoc_net::operator::{init_logging, LogFormat};

/// A distsoc anchor: mailbox, DM channels, bootstrap, address cache.
#[derive(Debug, Parser)]
#[command(name = "distsoc-anchor", version, about, long_about = None)]
struct Cli {
    /// Data directory (network key, default SQLite store).
    #[arg(long, global = true, default_value = "anchor-data")]
    data_dir: PathBuf,
    /// Configuration file (default: DATA_DIR/anchor.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the data directory, the network key (0600) and anchor.toml with
    /// every default written out.
    Init,
    /// Serve until Ctrl-C or SIGTERM, then drain in-flight requests.
    Run {
        /// Storage: `sqlite:PATH` or `postgres://…` (overrides the config).
        #[arg(long)]
        store: Option<String>,
        /// UDP listen address (overrides the config).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// TCP address of the admin gRPC API, or "" to disable (overrides
        /// the config). Unauthenticated: keep it on loopback.
        #[arg(long, value_name = "ADDR")]
        admin_listen: Option<String>,
        /// TCP address of Prometheus `/metrics`, or "" to disable (overrides
        /// the config).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<String>,
        /// Log lines on stderr: `text` or `json`, one object per line
        /// (overrides `log_format` in the config).
        #[arg(long, value_name = "FORMAT")]
        log_format: Option<LogFormat>,
    },
    /// Print the anchor's NodeId.
    Id,
    /// Talk to a running anchor's admin API (gRPC): stats, bans, retention,
    /// drain.
    Admin {
        /// Address of the admin API (default: admin_listen of the
        /// configuration).
        #[arg(long, value_name = "ADDR", global = true)]
        admin: Option<SocketAddr>,
        /// Print one JSON object instead of text.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: AdminCmd,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCmd {
    /// Sizes, request counters, retention and where it comes from, bans.
    Stats,
    /// Refuse every request of an identity (stored: survives restarts).
    Ban {
        /// The NodeId: 64 hex digits.
        node_id: String,
    },
    /// Lift a ban.
    Unban {
        /// The NodeId: 64 hex digits.
        node_id: String,
    },
    /// Show the mailbox retention and where it comes from; with DURATION,
    /// set it (overrides mailbox_ttl_secs, stored); with --clear, go back
    /// to mailbox_ttl_secs.
    Retention {
        /// New retention for newly enqueued messages: seconds, or with a
        /// unit (90m, 36h, 7d, 2w).
        #[arg(value_name = "DURATION", value_parser = distsoc_anchor::admin_client::parse_duration_secs)]
        duration: Option<u64>,
        /// Remove the retention set through the admin API.
        #[arg(long, conflicts_with = "duration")]
        clear: bool,
    },
    /// Stop accepting requests (health turns NOT_SERVING); restart the
    /// process to serve again.
    Drain,
}

fn main() -> std::process::ExitCode {
    match run_cli(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: each cause once (a cause whose text is already in
            // the message is not repeated).
            let mut parts: Vec<String> = Vec::new();
            for cause in e.chain() {
                let text = cause.to_string();
                if !parts.iter().any(|p| p.contains(&text)) {
                    parts.push(text);
                }
            }
            eprintln!("error: {}", parts.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: Cli) -> anyhow::Result<()> {
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| cli.data_dir.join("anchor.toml"));
    match cli.command {
        Command::Init => {
            // 0700 directory, 0600 files, whatever the umask.
            create_private_dir(&cli.data_dir)
                .with_context(|| format!("cannot create {}", cli.data_dir.display()))?;
            let key_path = cli.data_dir.join(KEY_FILE);
            let store = cli.data_dir.join("anchor.sqlite");
            if !key_path.exists() && store.exists() {
                anyhow::bail!(
                    "{} holds an anchor's store but no {KEY_FILE}: the anchor's key is missing, \
                     and `init` will not create a new identity over an existing store (clients \
                     pin the old NodeId). Restore {KEY_FILE} (mode 0600) from a backup, or \
                     initialize a new anchor in an empty --data-dir",
                    cli.data_dir.display()
                );
            }
            let key = NetworkKey::create(&key_path)?;
            match write_new_private_file(&config_path, AnchorConfig::default().to_toml().as_bytes())
            {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot write {}", config_path.display()))
                }
            }
            println!(
                "created anchor {} in {}",
                key.node_id(),
                cli.data_dir.display()
            );
            println!("configuration: {}", config_path.display());
        }
        Command::Admin {
            admin,
            json,
            command,
        } => {
            use distsoc_anchor::admin_client::{run, AdminCommand};
            let addr = match admin {
                Some(a) => a,
                None => {
                    let cfg = AnchorConfig::load(&config_path)?;
                    cfg.admin_addr().ok_or_else(|| {
                        anyhow::anyhow!(
                            "the admin API is disabled in {} (admin_listen = \"\"): pass --admin ADDR",
                            config_path.display()
                        )
                    })?
                }
            };
            let cmd = match command {
                AdminCmd::Stats => AdminCommand::Stats,
                AdminCmd::Ban { node_id } => AdminCommand::Ban(node_id),
                AdminCmd::Unban { node_id } => AdminCommand::Unban(node_id),
                AdminCmd::Retention {
                    duration: Some(secs),
                    ..
                } => AdminCommand::SetRetention(secs),
                AdminCmd::Retention { clear: true, .. } => AdminCommand::ClearRetention,
                AdminCmd::Retention { .. } => AdminCommand::ShowRetention,
                AdminCmd::Drain => AdminCommand::Drain,
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            match rt.block_on(run(addr, cmd, json)) {
                Ok(out) => print!("{out}"),
                Err(e) => {
                    if json {
                        println!("{}", serde_json::json!({ "error": e.to_string() }));
                    }
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        Command::Id => {
            let key = NetworkKey::load(&cli.data_dir.join(KEY_FILE))?;
            println!("{}", key.node_id());
        }
        Command::Run {
            store,
            listen,
            admin_listen,
            metrics_listen,
            log_format,
        } => {
            // One process per data directory (it serves the key in it).
            let _lock = DataDirLock::acquire(&cli.data_dir)?;
            let mut cfg = AnchorConfig::load(&config_path)?;
            if let Some(s) = store {
                cfg.store = s;
            }
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if let Some(a) = admin_listen {
                cfg.admin_listen = a;
            }
            if let Some(m) = metrics_listen {
                cfg.metrics_listen = m;
            }
            if let Some(f) = log_format {
                cfg.log_format = f;
            }
            cfg.validate().map_err(anyhow::Error::msg)?;
            init_logging(&cfg.log, cfg.log_format);
            for w in cfg.warnings() {
                tracing::warn!(file = %config_path.display(), "{w}");
            }
            let key = Arc::new(NetworkKey::load(&cli.data_dir.join(KEY_FILE))?);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                let opts = RunOptions {
                    data_dir: cli.data_dir.clone(),
                    drain_timeout: Duration::from_secs(cfg.drain_timeout_secs),
                };
                run_anchor(key, cfg, opts, distsoc_net::shutdown_signal()).await
            })?;
        }
    }
    Ok(())
}
