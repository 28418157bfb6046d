//! The run: identities, connections, the load phase, the drain and the
//! report.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cpu::{CpuReport, CpuSample, CpuWatch};
use super::report::{AnchorInfo, MailboxReport, RateLimitReport, Report, StopReason};
use super::report::{STOP_DURATION, STOP_INTERRUPTED, STOP_NONE};
use super::stats::{op_report, Live, Op, Stats};
use super::worker::{compose_post, lock, Book, Client, Refuse, Role, Run, Slot, Worker};
use super::{LoadgenArgs, LoadgenError, Options, Scenario, CONNECT_PARALLELISM, PROGRESS_TICK};
use distsoc_net::transport::{Handler, Peer, Transport, TransportConfig};
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ConnectString, Host, NodeId};
use distsoc_protocol::limits::RATE_LIMIT_PER_SECOND;
use distsoc_protocol::messages::content::SyncPost;
use distsoc_protocol::sign::SigningKey;
use indicatif::{ProgressBar, ProgressStyle};
use rand_core::{OsRng, RngCore, SeedableRng};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

pub(super) fn identities(n: usize, seed: Option<u64>) -> Vec<SigningKey> {
    match seed {
        Some(seed) => {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            (0..n)
                .map(|_| {
                    let mut s = [0u8; 32];
                    rng.fill_bytes(&mut s);
                    SigningKey::from_seed(&s)
                })
                .collect()
        }
        None => (0..n).map(|_| SigningKey::generate(&mut OsRng)).collect(),
    }
}

async fn resolve(target: &ConnectString) -> Result<SocketAddr, LoadgenError> {
    match &target.host {
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, target.port)),
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), target.port))
            .await
            .map_err(|source| LoadgenError::Resolve {
                host: name.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| LoadgenError::Resolve {
                host: name.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            }),
    }
}

fn client_config(opts: &Options, target: SocketAddr) -> TransportConfig {
    let unspecified = match target.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    TransportConfig {
        listen: SocketAddr::new(unspecified, 0),
        agent: concat!("distsoc-loadgen/", env!("CARGO_PKG_VERSION")).to_string(),
        hello_timeout: opts.connect_timeout,
        request_timeout: opts.request_timeout,
        keep_alive: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30),
        max_connections: 4,
        max_concurrent_bidi: 4,
        max_concurrent_uni: 4,
        close_timeout: Duration::from_secs(1),
        ..TransportConfig::default()
    }
}

fn progress_bar(opts: &Options) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let (len, unit) = match opts.requests {
        Some(n) => (n, "requests"),
        None => (
            u64::try_from(opts.duration.as_millis()).unwrap_or(u64::MAX),
            "ms",
        ),
    };
    let bar = ProgressBar::new(len);
    let template = format!("{{elapsed:>4}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn anchor_info(peer: &Peer) -> AnchorInfo {
    let info = peer.info();
    AnchorInfo {
        node_id: info.node_id.to_hex(),
        agent: info.agent.clone(),
        version: info.version,
        roles: info
            .roles
            .iter()
            .map(|r| format!("{r:?}").to_lowercase())
            .collect(),
        capabilities: info.capabilities.clone(),
        rate_limit_per_second: u32::from(info.limits.rate_limit_per_second),
        max_fetch_wait_ms: info.limits.max_fetch_wait_ms,
    }
}

/// Runs the load generator until the load phase ends by duration or request
/// count, then drains and reports.
pub async fn run(opts: Options) -> Result<Report, LoadgenError> {
    run_until(opts, std::future::pending()).await
}

/// [`run`], ending the load phase early (and skipping the drain) when
/// `interrupt` completes (e.g. on Ctrl-C).
pub async fn run_until(
    opts: Options,
    interrupt: impl Future<Output = ()> + Send + 'static,
) -> Result<Report, LoadgenError> {
    opts.validate()?;
    let target_addr = resolve(&opts.target).await?;
    let target_id = opts.target.node_id;
    let wait_target = match &opts.wait_target {
        Some(w) => Some((w.node_id, resolve(w).await?)),
        None => None,
    };
    // With --wait-target the waiters (even indices: the low end of each
    // pair) talk to the second anchor.
    let target_of = |idx: usize| match wait_target {
        Some(w) if idx.is_multiple_of(2) => w,
        _ => (target_id, target_addr),
    };
    let keys = identities(opts.clients, opts.seed);
    let handler: Arc<dyn Handler> = Arc::new(Refuse);
    let mut notes = Vec::new();
    if let Some(w) = &opts.wait_target {
        notes.push(format!(
            "waiters hold FetchWait on {w}; senders enqueue on {}",
            opts.target
        ));
    }

    // Connect every client (its own endpoint), a bounded number at a time.
    let mut transports = Vec::with_capacity(keys.len());
    for (idx, key) in keys.iter().enumerate() {
        let t = Transport::bind(key, client_config(&opts, target_of(idx).1), handler.clone())
            .map_err(LoadgenError::Bind)?;
        transports.push(t);
    }
    let bar = progress_bar(&opts);
    bar.set_message(format!("connecting {} clients", opts.clients));
    let mut setup_stats = Stats::default();
    let limit = Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let mut connecting = JoinSet::new();
    for (idx, (key, transport)) in keys.into_iter().zip(transports).enumerate() {
        let limit = limit.clone();
        let target = target_of(idx);
        connecting.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let start = Instant::now();
            let r = transport.connect(target.0, target.1).await;
            (idx, key, transport, target, r, start.elapsed())
        });
    }
    let mut connected: Vec<Option<Arc<Client>>> = (0..opts.clients).map(|_| None).collect();
    let mut first_error = None;
    let mut anchor = None;
    while let Some(joined) = connecting.join_next().await {
        let Ok((idx, key, transport, target, result, latency)) = joined else {
            continue;
        };
        match result {
            Ok(peer) => {
                setup_stats.ok(Op::Connect, latency);
                if anchor.is_none() {
                    anchor = Some(anchor_info(&peer));
                }
                connected[idx] = Some(Arc::new(Client {
                    idx,
                    id: NodeId(key.public()),
                    key,
                    transport,
                    target,
                    peer: Mutex::new(peer),
                    paused_until: Mutex::new(None),
                    retry_paused_us: AtomicU64::new(0),
                    reconnecting: tokio::sync::Mutex::new(()),
                }));
            }
            Err(e) => {
                setup_stats.err(Op::Connect, "connectFailed");
                first_error.get_or_insert_with(|| e.to_string());
                // Dropping closes the endpoint at once.
                drop(transport);
            }
        }
    }
    let clients_connected = connected.iter().filter(|c| c.is_some()).count();
    if clients_connected == 0 {
        bar.finish_and_clear();
        return Err(LoadgenError::NoConnection {
            target: opts.target.to_string(),
            first_error: first_error.unwrap_or_default(),
        });
    }
    if let Some(e) = &first_error {
        notes.push(format!(
            "{} of {} clients could not connect (first error: {e})",
            opts.clients - clients_connected,
            opts.clients
        ));
    }

    // Roles and slots.
    let mut slot_of: Vec<Option<usize>> = vec![None; opts.clients];
    let mut slots = Vec::with_capacity(clients_connected);
    for (idx, c) in connected.iter().enumerate() {
        let Some(client) = c else { continue };
        let partner_idx = idx ^ 1;
        let partner_ok = connected.get(partner_idx).is_some_and(Option::is_some);
        let role = match opts.scenario {
            Scenario::Ingest | Scenario::Notify => Role::Ingest,
            _ if partner_ok && idx < partner_idx => Role::PairLow,
            _ if partner_ok => Role::PairHigh,
            Scenario::Mixed => Role::Ingest,
            _ => Role::Idle,
        };
        slot_of[idx] = Some(slots.len());
        slots.push(Slot {
            client: client.clone(),
            role,
            partner: None,
            channel: None,
            next_seq: AtomicU64::new(0),
            inbox: tokio::sync::Mutex::new(0),
            book: Mutex::new(Book::default()),
            presigned: Mutex::new(Vec::new()),
            in_flight: Semaphore::new(opts.concurrency_per_client),
        });
    }
    for i in 0..slots.len() {
        if matches!(slots[i].role, Role::PairLow) {
            let j = slot_of[slots[i].client.idx ^ 1].unwrap_or(i);
            let channel = Arc::new(watch::channel(None).0);
            slots[i].partner = Some(j);
            slots[j].partner = Some(i);
            slots[i].channel = Some(channel.clone());
            slots[j].channel = Some(channel);
        }
    }
    let clients_idle = slots.iter().filter(|s| s.role == Role::Idle).count();
    if clients_idle > 0 {
        notes.push(format!(
            "{clients_idle} client(s) idle: no connected partner in scenario {}",
            opts.scenario
        ));
    }

    let run_id = OsRng.next_u64();
    let presigned = if opts.presign > 0 {
        bar.set_message(format!("signing {} posts", opts.presign));
        presign(&slots, run_id, opts.presign, opts.payload_bytes).await
    } else {
        0
    };
    let cpu_watch = CpuWatch {
        server_pid: opts.server_pid,
        postgres_pid: opts.postgres_pid,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let (interrupt_tx, interrupt_rx) = watch::channel(false);
    let run = Arc::new(Run {
        run_id,
        slots,
        stop_tx,
        stop_rx,
        stop_reason: AtomicU8::new(STOP_NONE),
        interrupt_tx,
        interrupt_rx,
        issued: AtomicU64::new(0),
        live: Live::default(),
        draining: AtomicBool::new(false),
        opts,
    });

    // Load phase.
    let cpu_start = cpu_watch.sample();
    let started = Instant::now();
    let deadline = started + run.opts.duration;
    let mut background = JoinSet::new();
    {
        let run = run.clone();
        background.spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            run.stop(STOP_DURATION);
        });
    }
    {
        let run = run.clone();
        background.spawn(async move {
            interrupt.await;
            run.interrupt_tx.send_replace(true);
            run.stop(STOP_INTERRUPTED);
        });
    }
    {
        let run = run.clone();
        let bar = bar.clone();
        background.spawn(async move {
            let mut tick = tokio::time::interval(PROGRESS_TICK);
            loop {
                tick.tick().await;
                let ok = run.live.ok.load(Ordering::Relaxed);
                let errors = run.live.errors.load(Ordering::Relaxed);
                let limited = run.live.rate_limited.load(Ordering::Relaxed);
                if run.draining.load(Ordering::Relaxed) {
                    bar.set_message(format!("draining... ok {ok} err {errors}"));
                    continue;
                }
                let secs = started.elapsed().as_secs_f64().max(0.001);
                let pos = match run.opts.requests {
                    Some(_) => run.issued.load(Ordering::Relaxed),
                    None => u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                };
                bar.set_position(pos);
                bar.set_message(format!(
                    "ok {ok} ({:.0}/s)  err {errors}  rateLimited {limited}",
                    ok as f64 / secs
                ));
            }
        });
    }

    let mut workers = JoinSet::new();
    let mut stream = 0u64;
    for slot in 0..run.slots.len() {
        let role = run.slots[slot].role;
        let tasks = match (run.opts.scenario, role) {
            (_, Role::Idle) => 0,
            (Scenario::Fetchwait, Role::PairLow) => 1,
            _ => run.opts.concurrency_per_client,
        };
        for k in 0..tasks {
            stream += 1;
            let mut w = Worker::new(run.clone(), stream);
            let scenario = run.opts.scenario;
            workers.spawn(async move {
                let setup = k == 0;
                match (scenario, role) {
                    (Scenario::Notify, _) => w.notify_loop(slot).await,
                    (_, Role::Ingest) => w.ingest_loop(slot).await,
                    (Scenario::Fetchwait, Role::PairLow) => w.waiter_loop(slot).await,
                    (Scenario::Fetchwait, _) => w.sender_loop(slot).await,
                    (Scenario::Mixed, _) => w.mixed_loop(slot, setup).await,
                    _ => w.mailbox_loop(slot, setup).await,
                }
                w.stats
            });
        }
    }
    let mut load_stats = Stats::default();
    let mut panicked = 0usize;
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(s) => load_stats.merge(s),
            Err(_) => panicked += 1,
        }
    }
    // Every worker ends only once the load phase is over.
    run.stop(STOP_DURATION);
    let load_elapsed = started.elapsed();
    let cpu_end = cpu_watch.sample();
    let stopped_by = StopReason::from_u8(run.stop_reason.load(Ordering::SeqCst));

    // Drain.
    run.draining.store(true, Ordering::Relaxed);
    let drain_start = Instant::now();
    let drain_until = drain_start + run.opts.drain_timeout;
    let mut drain_stats = Stats::default();
    let mut drain_complete = true;
    let interrupted = *run.interrupt_rx.borrow();
    if run.opts.scenario.uses_mailbox() {
        if interrupted {
            drain_complete = false;
            notes.push("interrupted: queues not drained".into());
        } else {
            let mut drains = JoinSet::new();
            for slot in 0..run.slots.len() {
                if run.slots[slot].partner.is_none() {
                    continue;
                }
                stream += 1;
                let mut w = Worker::new(run.clone(), stream);
                drains.spawn(async move {
                    let complete = w.drain(slot, drain_until).await;
                    (w.stats, complete)
                });
            }
            while let Some(joined) = drains.join_next().await {
                match joined {
                    Ok((s, complete)) => {
                        drain_stats.merge(s);
                        drain_complete &= complete;
                    }
                    Err(_) => {
                        panicked += 1;
                        drain_complete = false;
                    }
                }
            }
        }
    }
    let drain_elapsed = drain_start.elapsed();
    background.abort_all();
    bar.finish_and_clear();

    // Close every endpoint.
    let mut closing = JoinSet::new();
    for slot in &run.slots {
        let client = slot.client.clone();
        closing.spawn(async move { client.transport.close().await });
    }
    while closing.join_next().await.is_some() {}

    if panicked > 0 {
        notes.push(format!("{panicked} worker task(s) panicked"));
    }
    Ok(build_report(
        &run,
        Phases {
            setup: setup_stats,
            load: load_stats,
            drain: drain_stats,
            load_elapsed,
            drain_elapsed,
            drain_complete,
            stopped_by,
            cpu: cpu_watch.any().then_some((cpu_watch, cpu_start, cpu_end)),
            presigned,
        },
        clients_connected,
        clients_idle,
        anchor,
        notes,
        panicked == 0,
    ))
}

struct Phases {
    setup: Stats,
    load: Stats,
    drain: Stats,
    load_elapsed: Duration,
    drain_elapsed: Duration,
    drain_complete: bool,
    stopped_by: StopReason,
    /// What was watched, and its CPU at the start and the end of the load
    /// phase.
    cpu: Option<(CpuWatch, CpuSample, CpuSample)>,
    presigned: u64,
}

fn build_report(
    run: &Run,
    phases: Phases,
    clients_connected: usize,
    clients_idle: usize,
    anchor: Option<AnchorInfo>,
    mut notes: Vec<String>,
    no_panic: bool,
) -> Report {
    let opts = &run.opts;
    let mut all = Stats::default();
    all.merge(phases.setup);
    all.merge(phases.load);
    all.merge(phases.drain);

    let mut requests = 0u64;
    let mut load_requests = 0u64;
    let mut refused = 0u64;
    let mut mismatch_errors = 0u64;
    let mut load_ok = 0u64;
    let mut ops = Vec::new();
    for (op, s) in std::mem::take(&mut all.ops) {
        let sent = s.ok + s.errors.values().sum::<u64>() + s.cancelled;
        if op.is_request() {
            requests += sent;
            refused += s
                .errors
                .get(ErrorCode::RateLimited.name())
                .copied()
                .unwrap_or(0);
        }
        if matches!(
            op,
            Op::Enqueue | Op::Fetch | Op::FetchWait | Op::PushPost | Op::Notify
        ) {
            load_requests += sent;
            load_ok += s.ok;
        }
        mismatch_errors += s.errors.get("mismatch").copied().unwrap_or(0);
        // Throughput is for the load phase; connections and the drain have
        // none.
        let phase = match op {
            Op::Connect | Op::DrainFetch => None,
            _ => Some(phases.load_elapsed),
        };
        ops.push(op_report(op, s, phase));
    }

    if load_ok == 0 {
        notes.push("no request of the load phase succeeded: see the errors by code".into());
    }
    let cpu = phases.cpu.map(|(watch, start, end)| {
        let (name, n) = match opts.scenario {
            Scenario::Ingest => ("push_post", ok_of(&ops, "push_post")),
            Scenario::Notify => ("notification", ok_of(&ops, "notify")),
            Scenario::Mailbox | Scenario::Fetchwait => ("enqueue", ok_of(&ops, "enqueue")),
            Scenario::Mixed => ("request", load_ok),
        };
        CpuReport::between(&watch, start, end, name, n)
    });
    if opts.scenario.uses_mailbox()
        && anchor
            .as_ref()
            .is_some_and(|a| !a.capabilities.iter().any(|c| c == "mailbox/1"))
    {
        notes
            .push("the target does not announce the mailbox/1 capability: is it an anchor?".into());
    }
    let mailbox = opts.scenario.uses_mailbox().then(|| {
        let mut m = MailboxReport {
            drain_complete: phases.drain_complete,
            enqueue_retries: all.enqueue_retries,
            ..MailboxReport::default()
        };
        for slot in &run.slots {
            let b = lock(&slot.book);
            m.enqueued += b.confirmed.len() as u64;
            m.enqueue_unknown += b.attempted.difference(&b.confirmed).count() as u64;
            m.delivered += b.delivered.len() as u64;
            m.delivered_during_drain += b.drained;
            m.delivered_unconfirmed += b
                .delivered
                .keys()
                .filter(|seq| !b.confirmed.contains(seq))
                .count() as u64;
            m.missing += b
                .confirmed
                .iter()
                .filter(|seq| !b.delivered.contains_key(seq))
                .count() as u64;
            m.duplicates += b.duplicates;
            m.redelivered += b.redelivered;
            m.mismatched += b.mismatched;
            m.stale += b.stale;
        }
        m
    });
    if let Some(m) = &mailbox {
        if m.stale > 0 {
            notes.push(format!(
                "{} message(s) of an earlier run were found in the channels and acknowledged",
                m.stale
            ));
        }
        if m.enqueue_unknown > 0 {
            notes.push(format!(
                "{} enqueue(s) have an unknown outcome (timeout, lost connection or abandoned \
                 at the end); {} of them were delivered",
                m.enqueue_unknown, m.delivered_unconfirmed
            ));
        }
    }
    let consistent = no_panic
        && mismatch_errors == 0
        && mailbox.as_ref().is_none_or(|m| {
            m.missing == 0 && m.duplicates == 0 && m.mismatched == 0 && m.drain_complete
        });

    let per_second = anchor
        .as_ref()
        .map(|a| a.rate_limit_per_second)
        .filter(|r| *r > 0)
        .unwrap_or(RATE_LIMIT_PER_SECOND);
    let fraction = if requests > 0 {
        refused as f64 / requests as f64
    } else {
        0.0
    };
    let paused_s = run
        .slots
        .iter()
        .map(|s| s.client.retry_paused_us.load(Ordering::Relaxed))
        .sum::<u64>() as f64
        / 1e6;
    let warning = (refused > 0).then(|| {
        format!(
            "RATE LIMITED: {refused} of {requests} requests ({:.1}%) were refused with \
             rateLimited; the clients spent {paused_s:.1} client-seconds paused honouring \
             retryAfterMs.\n\
             The throughputs above are shaped by the anchor's rate limit ({per_second} requests/s \
             per identity AND per IP; all {clients_connected} clients share this host's IP), \
             not by its capacity.",
            fraction * 100.0
        )
    });

    Report {
        target: opts.target.to_string(),
        scenario: opts.scenario,
        clients: opts.clients,
        clients_connected,
        clients_idle,
        concurrency_per_client: opts.concurrency_per_client,
        payload_bytes: opts.payload_bytes,
        duration_limit_s: opts.duration.as_secs_f64(),
        request_limit: opts.requests,
        seed: opts.seed,
        run_id: format!("{:016x}", run.run_id),
        stopped_by: phases.stopped_by,
        elapsed_s: phases.load_elapsed.as_secs_f64(),
        drain_s: phases.drain_elapsed.as_secs_f64(),
        load_requests,
        anchor,
        ops,
        fetch_wait_empty: all.fetch_wait_empty,
        mailbox,
        rate_limit: RateLimitReport {
            limited: refused > 0,
            refused,
            requests,
            fraction,
            paused_s,
            per_second,
            warning,
        },
        presigned: phases.presigned,
        cpu,
        consistent,
        notes,
    }
}

fn ok_of(ops: &[super::report::OpReport], op: &str) -> u64 {
    ops.iter().find(|o| o.op == op).map_or(0, |o| o.ok)
}

/// Signs `total` posts before the load phase, spread over the slots that
/// push posts, on every core; returns how many were signed.
async fn presign(slots: &[Slot], run_id: u64, total: u64, payload_bytes: usize) -> u64 {
    let pushers: Vec<(usize, SigningKey)> = slots
        .iter()
        .filter(|s| matches!(s.role, Role::Ingest | Role::PairLow | Role::PairHigh))
        .map(|s| (s.client.idx, s.client.key.clone()))
        .collect();
    if pushers.is_empty() {
        return 0;
    }
    let n = pushers.len() as u64;
    let jobs: Vec<(usize, SigningKey, u64)> = pushers
        .into_iter()
        .enumerate()
        .map(|(i, (idx, key))| (idx, key, total / n + u64::from((i as u64) < total % n)))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let signed = tokio::task::spawn_blocking(move || {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let out: Mutex<Vec<(usize, Vec<SyncPost>)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((idx, key, count)) = jobs.get(i) else {
                        break;
                    };
                    // Sent last first: the highest sequence numbers first.
                    let posts: Vec<SyncPost> = (0..*count)
                        .rev()
                        .filter_map(|seq| compose_post(key, run_id, *idx, seq, payload_bytes))
                        .collect();
                    lock(&out).push((*idx, posts));
                });
            }
        });
        out.into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    })
    .await
    .unwrap_or_default();
    let mut total_signed = 0;
    for (idx, posts) in signed {
        if let Some(slot) = slots.iter().find(|s| s.client.idx == idx) {
            total_signed += posts.len() as u64;
            slot.next_seq.store(posts.len() as u64, Ordering::Relaxed);
            *lock(&slot.presigned) = posts;
        }
    }
    total_signed
}

/// `distsoc loadgen`: runs, prints the table on stdout (the progress bar goes
/// to stderr), writes the JSON report if asked. Fails after printing when the
/// mailbox results are inconsistent.
pub fn main(args: LoadgenArgs) -> Result<(), LoadgenError> {
    let opts = args.options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| LoadgenError::Io {
            what: "cannot start the tokio runtime".into(),
            source,
        })?;
    let report = runtime.block_on(run_until(opts, async {
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).map_err(|e| LoadgenError::Io {
            what: "cannot encode the report".into(),
            source: e.into(),
        })?;
        std::fs::write(path, json).map_err(|source| LoadgenError::Io {
            what: format!("cannot write {}", path.display()),
            source,
        })?;
    }
    if let Some(path) = &args.plot {
        super::plot::write_svg(&report, path)?;
    }
    if !report.consistent {
        let why = match &report.mailbox {
            Some(m) => format!(
                "{} missing, {} duplicates, {} mismatched, drain {}",
                m.missing,
                m.duplicates,
                m.mismatched,
                if m.drain_complete {
                    "complete"
                } else {
                    "incomplete"
                }
            ),
            None => "payload mismatches or a failed worker".into(),
        };
        return Err(LoadgenError::Inconsistent(why));
    }
    Ok(())
}
