//! Memory per idle connection of a user node (issue 3). The design budget is
//! ~1.5 MB of connection state for 101 persistent connections, ~250 KB for
//! 15 (discovery-protocol-v2 §1.3). Results are recorded in
//! `docs/BENCHMARKS.md`.
//!
//! ```sh
//! cargo run --release -p distsoc-node --example idle_connections -- --connections 101
//! ```
//!
//! # What runs
//!
//! * **The hub** (this process): a real node (`Node::init` in a temporary
//!   directory: key file, SQLite store) serving its [`Service`] on a
//!   [`Transport`] bound to 127.0.0.1 with the transport settings
//!   `Node::start` uses, except `max_connections`, raised to fit `N` (the
//!   default, 200, refuses a 201st peer).
//! * **The clients** in a **child process** (this example re-executed with
//!   `--client-mode`): `N` client endpoints, each with its own key (one
//!   connection per NodeId), each dialling the hub once and completing the
//!   QUIC handshake and `Hello`. Then nothing: no request, no push. Keeping
//!   the clients out of the hub's process means the hub's memory changes are
//!   the hub's cost only.
//!
//! # What is measured
//!
//! The hub's `/proc/self/status` (`VmRSS`, and its anonymous part `RssAnon`:
//! heap, thread stacks, anonymous mmaps; the rest is mapped files such as
//! the binary and libc) at five points, each after `--settle-ms` with no
//! traffic (handshake packets acknowledged, tasks parked):
//!
//! 1. bound, no connection;
//! 2. one connection (warms up one-time costs: rustls and ring tables,
//!    the first task allocations, tokio's worker state);
//! 3. `N` connections;
//! 4. all `N` closed by the clients and deregistered by the hub;
//! 5. `N` connections again, from a new client process (shows whether what
//!    step 4 kept is reused or leaked).
//!
//! Per connection = (3 − 2) / (N − 1).
//!
//! # What RSS does and does not say
//!
//! RSS counts resident pages, not live allocations. It includes memory the
//! allocator (glibc malloc here) freed but kept — the handshakes' transient
//! buffers (certificates, TLS transcript, crypto frames, unacknowledged
//! packets) — and excludes anything allocated but never touched (a quinn
//! endpoint allocates a ~3 MiB receive buffer of which little is ever
//! touched; it is in step 1 anyway). Step 4 shows how much the allocator
//! keeps after every connection is gone, step 5 whether it is reused. Kernel
//! memory is not in RSS: the hub has one UDP socket for all peers, so there
//! is no per-connection socket buffer. quinn's flow-control windows
//! (printed at the end) are limits on what a peer may make us buffer, not
//! allocations: an idle connection holds none of that data.
//!
//! To see what the bytes are, run the hub under a heap profiler, e.g.
//! `heaptrack target/release/examples/idle_connections --connections 101`
//! (the peak is the moment `N` connections are up); the breakdown is in
//! `docs/BENCHMARKS.md`.
//!
//! The run is bounded: every wait has a deadline, and `--timeout-secs`
//! (default 120 s) ends the process whatever happens; the child exits when
//! its standard input closes, i.e. when the hub process ends.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use distsoc_net::identity::{NetworkKey, KEY_FILE};
use distsoc_net::transport::{
    Handler, HandlerFuture, RequestCtx, Traffic, Transport, TransportConfig,
};
use distsoc_node::node::{Node, NODE_CAPABILITIES};
use distsoc_node::service::Service;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ConnectString, Host};
use distsoc_protocol::messages::wire::{self, Limits};
use distsoc_protocol::messages::Message;
use distsoc_protocol::sign::SigningKey;
use rand_core::RngCore;

const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Longest wait for the hub to see the expected number of peers.
const PEER_WAIT: Duration = Duration::from_secs(30);

/// Memory of the hub per idle connection (see the file's documentation).
#[derive(Debug, Parser)]
struct Args {
    /// Idle connections to open to the hub (at least 2).
    #[arg(long, default_value_t = 101, value_parser = clap::value_parser!(u32).range(2..=5000))]
    connections: u32,
    /// The hub's `max_concurrent_bidi` and `max_concurrent_uni` (default: the
    /// transport's, 100). quinn pre-allocates state for every stream a peer
    /// may open, so this is the one setting with a visible per-connection
    /// cost.
    #[arg(long)]
    max_concurrent_streams: Option<u32>,
    /// Quiet time before each memory reading, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    settle_ms: u64,
    /// With all connections up, stay idle this long and report the UDP
    /// traffic the hub sent and received meanwhile (QUIC keep-alives and
    /// their acknowledgements), per connection and per day. 0: skip.
    #[arg(long, default_value_t = 0)]
    idle_secs: u64,
    /// The whole run ends (exit code 2) after this many seconds (plus
    /// `--idle-secs`).
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Internal: run as the client process, dialling `--hub`.
    #[arg(long, hide = true)]
    client_mode: bool,
    /// Internal: the hub's connect string (`NodeId@ip:port`).
    #[arg(long, hide = true)]
    hub: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.client_mode {
        let hub = args.hub.context("--client-mode needs --hub")?;
        return client_mode(&hub);
    }
    watchdog(Duration::from_secs(args.timeout_secs + args.idle_secs));
    hub_mode(&args)
}

/// Ends the process after `after`, whatever it is doing.
fn watchdog(after: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        eprintln!("idle_connections: timed out after {after:?}");
        std::process::exit(2);
    });
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Resident memory of this process, in KiB, from `/proc/self/status`.
#[derive(Debug, Clone, Copy)]
struct Rss {
    /// `VmRSS`: all resident pages.
    total_kib: i64,
    /// `RssAnon`: resident anonymous pages (heap, stacks, anonymous mmaps).
    anon_kib: i64,
}

impl Rss {
    fn read() -> anyhow::Result<Rss> {
        let status = std::fs::read_to_string("/proc/self/status")
            .context("reading /proc/self/status (Linux only)")?;
        let field = |name: &str| -> anyhow::Result<i64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| anyhow!("no {name} in /proc/self/status"))
        };
        Ok(Rss {
            total_kib: field("VmRSS:")?,
            anon_kib: field("RssAnon:")?,
        })
    }
}

fn random_key() -> SigningKey {
    let mut seed = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut seed);
    SigningKey::from_seed(&seed)
}

// ---------------------------------------------------------------------------
// Hub (parent process)
// ---------------------------------------------------------------------------

/// The client process and the line protocol to it: `connect K` answered by
/// `connected TOTAL VMRSS_KIB RSSANON_KIB`, then `close` (or end of input).
struct Clients {
    child: Child,
    to: Option<ChildStdin>,
    from: std::io::Lines<BufReader<ChildStdout>>,
}

impl Clients {
    fn spawn(hub: &str) -> anyhow::Result<Clients> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--client-mode", "--hub", hub])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the client process")?;
        let to = child.stdin.take().context("no child stdin")?;
        let from = BufReader::new(child.stdout.take().context("no child stdout")?).lines();
        Ok(Clients {
            child,
            to: Some(to),
            from,
        })
    }

    /// Opens `k` more connections; returns the client process's total and
    /// its memory.
    fn connect(&mut self, k: u32) -> anyhow::Result<(usize, Rss)> {
        let to = self.to.as_mut().context("client input closed")?;
        writeln!(to, "connect {k}")?;
        to.flush()?;
        let line = self
            .from
            .next()
            .context("client process ended")?
            .context("reading from the client process")?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["connected", total, vm, anon] => Ok((
                total.parse()?,
                Rss {
                    total_kib: vm.parse()?,
                    anon_kib: anon.parse()?,
                },
            )),
            _ => bail!("unexpected answer from the client process: {line:?}"),
        }
    }

    /// Asks the clients to close their connections and waits for the process
    /// to end.
    fn close(mut self) -> anyhow::Result<()> {
        if let Some(mut to) = self.to.take() {
            writeln!(to, "close")?;
        }
        let status = self.child.wait()?;
        if !status.success() {
            bail!("client process failed: {status}");
        }
        Ok(())
    }
}

/// Waits until the hub has exactly `n` live, Hello-complete peers.
fn wait_for_peers(hub: &Transport, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + PEER_WAIT;
    loop {
        let live = hub.peers().len();
        if live == n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("hub has {live} peers after {PEER_WAIT:?}, expected {n}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn hub_mode(args: &Args) -> anyhow::Result<()> {
    let n = args.connections;
    let settle = Duration::from_millis(args.settle_ms);
    let rt = runtime()?;
    let dir = tempfile::tempdir()?;
    let node = Node::init(dir.path(), None)?;
    let key = NetworkKey::load(&dir.path().join(KEY_FILE))?;
    // `Node::start`'s settings, with room for `n` peers.
    let defaults = TransportConfig::default();
    let cfg = TransportConfig {
        listen: LOOPBACK,
        capabilities: NODE_CAPABILITIES.iter().map(|s| s.to_string()).collect(),
        limits: Limits {
            max_pull_batch: node.config().max_pull_batch,
            ..Limits::default()
        },
        listen_addresses: node.config().advertise.clone(),
        idle_timeout: Duration::from_secs(node.config().idle_timeout_secs.max(1)),
        max_connections: defaults.max_connections.max(n as usize + 1),
        // Every client comes from 127.0.0.1.
        max_connections_per_ip: defaults.max_connections_per_ip.max(n as usize + 1),
        max_concurrent_bidi: args
            .max_concurrent_streams
            .unwrap_or(defaults.max_concurrent_bidi),
        max_concurrent_uni: args
            .max_concurrent_streams
            .unwrap_or(defaults.max_concurrent_uni),
        ..defaults
    };
    let streams = (cfg.max_concurrent_bidi, cfg.max_concurrent_uni);
    let windows = (
        cfg.stream_receive_window,
        cfg.connection_receive_window,
        cfg.send_window,
        cfg.connection_frame_budget,
        cfg.keep_alive,
        cfg.idle_timeout,
    );
    let service = Arc::new(Arc::new(Service::new(node.clone())).router());
    let hub = rt.block_on(async { Transport::bind(key.signing_key(), cfg, service) })?;
    let connect_string = format!("{}@{}", hub.node_id(), hub.local_addr()?);

    std::thread::sleep(settle);
    let before = Rss::read()?;
    let mut clients = Clients::spawn(&connect_string)?;
    let (_, _) = clients.connect(1)?;
    wait_for_peers(&hub, 1)?;
    std::thread::sleep(settle);
    let one = Rss::read()?;
    let started = Instant::now();
    let (total, client_rss) = clients.connect(n - 1)?;
    let connect_time = started.elapsed();
    if total != n as usize {
        bail!("client process reports {total} connections, expected {n}");
    }
    wait_for_peers(&hub, n as usize)?;
    std::thread::sleep(settle);
    let all = Rss::read()?;
    let idle_report =
        (args.idle_secs > 0).then(|| idle_traffic(&hub, Duration::from_secs(args.idle_secs)));
    clients.close()?;
    wait_for_peers(&hub, 0)?;
    std::thread::sleep(settle);
    let closed = Rss::read()?;
    // A second round from a new client process: if the memory kept after
    // the close is reused, the total comes back to about `all`; a leak would
    // add another round's worth.
    let mut clients = Clients::spawn(&connect_string)?;
    clients.connect(n)?;
    wait_for_peers(&hub, n as usize)?;
    std::thread::sleep(settle);
    let again = Rss::read()?;
    clients.close()?;
    wait_for_peers(&hub, 0)?;
    rt.block_on(hub.close());

    let per = |a: i64, b: i64| (b - a) as f64 / f64::from(n - 1);
    println!(
        "hub: a distsoc-node Service on 127.0.0.1, {n} idle connections (Hello done, no traffic); \
         max concurrent streams per connection: {} bidi, {} uni",
        streams.0, streams.1
    );
    println!(
        "opened {} connections one after another in {connect_time:.2?}",
        n - 1
    );
    println!();
    println!("| hub process | VmRSS (KiB) | RssAnon (KiB) |");
    println!("|---|---|---|");
    println!(
        "| bound, no connection | {} | {} |",
        before.total_kib, before.anon_kib
    );
    println!("| 1 connection | {} | {} |", one.total_kib, one.anon_kib);
    println!("| {n} connections | {} | {} |", all.total_kib, all.anon_kib);
    println!(
        "| all closed again | {} | {} |",
        closed.total_kib, closed.anon_kib
    );
    println!(
        "| {n} connections again (new clients) | {} | {} |",
        again.total_kib, again.anon_kib
    );
    println!(
        "| per connection, ({n} − 1 conn) / {} | {:.1} | {:.1} |",
        n - 1,
        per(one.total_kib, all.total_kib),
        per(one.anon_kib, all.anon_kib)
    );
    println!(
        "| first connection (incl. one-time warm-up) | {} | {} |",
        one.total_kib - before.total_kib,
        one.anon_kib - before.anon_kib
    );
    println!();
    println!(
        "summary: N={n} per_conn_rss_kib={:.1} per_conn_anon_kib={:.1} all_conn_anon_kib={} \
         retained_after_close_anon_kib={} second_round_extra_anon_kib={}",
        per(one.total_kib, all.total_kib),
        per(one.anon_kib, all.anon_kib),
        all.anon_kib - one.anon_kib,
        closed.anon_kib - one.anon_kib,
        again.anon_kib - all.anon_kib,
    );
    println!(
        "client process ({n} endpoints, one connection each): VmRSS {} KiB, RssAnon {} KiB",
        client_rss.total_kib, client_rss.anon_kib
    );
    let (stream, conn, send, budget, keep_alive, idle) = windows;
    println!(
        "quinn windows per connection (limits, not allocations): stream receive {} KiB, \
         connection receive {} KiB, send {} KiB; frame budget {} KiB; \
         keep-alive {keep_alive:?}, idle timeout {idle:?}",
        stream / 1024,
        conn / 1024,
        send / 1024,
        budget / 1024
    );
    if let Some((t, secs)) = idle_report {
        let day = 86_400.0 / secs;
        let per_day = |v: u64| v as f64 * day;
        let bytes = t.tx_bytes + t.rx_bytes;
        println!();
        println!(
            "idle {secs:.0} s with {n} connections (keep-alive {keep_alive:?}): hub sent {} datagrams / {} B, \
             received {} / {} B",
            t.tx_datagrams, t.tx_bytes, t.rx_datagrams, t.rx_bytes
        );
        println!(
            "summary: idle_bytes_per_conn_per_day={:.0} idle_datagrams_per_conn_per_day={:.0} \
             idle_mb_per_day_all_conns={:.2}",
            per_day(bytes) / f64::from(n),
            per_day(t.tx_datagrams + t.rx_datagrams) / f64::from(n),
            per_day(bytes) / 1e6
        );
    }
    drop(node);
    Ok(())
}

/// The hub's UDP traffic on all its connections over `period` of silence,
/// and the seconds it covered.
fn idle_traffic(hub: &Transport, period: Duration) -> (Traffic, f64) {
    let sum = || {
        let mut t = Traffic::default();
        for info in hub.peers() {
            if let Some(p) = hub.peer(&info.node_id) {
                let x = p.traffic();
                t.tx_datagrams += x.tx_datagrams;
                t.tx_bytes += x.tx_bytes;
                t.rx_datagrams += x.rx_datagrams;
                t.rx_bytes += x.rx_bytes;
            }
        }
        t
    };
    let (t0, started) = (sum(), Instant::now());
    std::thread::sleep(period);
    let (t1, secs) = (sum(), started.elapsed().as_secs_f64());
    (
        Traffic {
            tx_datagrams: t1.tx_datagrams - t0.tx_datagrams,
            tx_bytes: t1.tx_bytes - t0.tx_bytes,
            rx_datagrams: t1.rx_datagrams - t0.rx_datagrams,
            rx_bytes: t1.rx_bytes - t0.rx_bytes,
        },
        secs,
    )
}

// ---------------------------------------------------------------------------
// Clients (child process)
// ---------------------------------------------------------------------------

/// A client endpoint serves nothing.
struct Refuse;

impl Handler for Refuse {
    fn handle<'a>(&'a self, _ctx: RequestCtx, _msg: Message) -> HandlerFuture<'a> {
        Box::pin(async {
            Err(wire::Error::new(
                ErrorCode::UnknownMessage,
                0,
                "benchmark client",
            ))
        })
    }
}

fn client_mode(hub: &str) -> anyhow::Result<()> {
    let hub: ConnectString = hub.parse().context("bad --hub")?;
    let addr = match hub.host {
        Host::Ip(ip) => SocketAddr::new(ip, hub.port),
        Host::Name(_) => bail!("--hub must be an IP address"),
    };
    let rt = runtime()?;
    let handler: Arc<dyn Handler> = Arc::new(Refuse);
    let mut clients: Vec<Transport> = Vec::new();
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["connect", k] => {
                let k: usize = k.parse()?;
                for _ in 0..k {
                    let client = rt.block_on(async {
                        let cfg = TransportConfig {
                            listen: LOOPBACK,
                            ..TransportConfig::default()
                        };
                        let t = Transport::bind(&random_key(), cfg, handler.clone())?;
                        t.connect(hub.node_id, addr).await?;
                        anyhow::Ok(t)
                    })?;
                    clients.push(client);
                }
                let rss = Rss::read()?;
                writeln!(
                    out,
                    "connected {} {} {}",
                    clients.len(),
                    rss.total_kib,
                    rss.anon_kib
                )?;
                out.flush()?;
            }
            ["close"] => break,
            _ => bail!("unknown command {line:?}"),
        }
    }
    rt.block_on(futures_util::future::join_all(
        clients.iter().map(|c| c.close()),
    ));
    Ok(())
}
