//! `distsoc devnet`: a whole distsoc network on this machine, walked through
//! on screen.
//!
//! One anchor (embedded SQLite store) and three user nodes (Alice, Bob and
//! Carol), each with its own data directory, key and SQLite store, all on
//! real QUIC over 127.0.0.1. The scenario: profiles, following, a public
//! post, a circle post only members can read, a DM through an anchor channel
//! while the recipient is offline, and pull sync on reconnect. Every step
//! checks its outcome; the first failed check stops the devnet with a
//! message saying what was expected. Then the conformance suite runs against
//! the anchor. With `--keep` everything stays up until Ctrl-C, and the
//! printed commands drive the same nodes with `distsoc-node`.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::{NetworkKey, KEY_FILE};
use distsoc_net::transport::Peer;
use distsoc_net::{now_ms, shutdown_signal};
use distsoc_node::compose::VisibilityIntent;
use distsoc_node::config::Config;
use distsoc_node::dm::DmClient;
use distsoc_node::node::{Node, Running};
use distsoc_protocol::ids::{ConnectString, NodeId, PostId, PostingId};
use distsoc_protocol::messages::content::open_post;

mod mesh;

/// Bound of every network step of the scenario.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long an anchor (and the nodes) get to finish in-flight requests on
/// shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// 127.0.0.1, any free port.
const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Options of `distsoc devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Directory for the network's data: anchor/, alice/, bob/, carol/,
    /// conformance/ (the suite's reports) and logs/ (the anchor's and nodes'
    /// log). Must be absent or empty. Default: a temporary directory, removed
    /// on exit except conformance/ and logs/.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Leave the anchor and the nodes running after the scenario, until
    /// Ctrl-C, and print the connect strings and `distsoc-node` commands to
    /// use them.
    #[arg(long)]
    keep: bool,
    /// Do not run the conformance suite against the anchor.
    #[arg(long)]
    no_suite: bool,
    /// After the scenario, start this many more nodes in this process (each
    /// knows only the anchor and follows two others) and watch their maps
    /// fill: InitialMapSync at once, hop 3 after the first diff round
    /// (every 120 s). 30 or more shows a mesh.
    #[arg(long, default_value_t = 0)]
    mesh_nodes: usize,
    /// How long to watch the maps of `--mesh-nodes`, in seconds.
    #[arg(long, default_value_t = 150)]
    mesh_watch: u64,
}

/// Runs the devnet (its own tokio runtime).
pub(crate) fn run(args: DevnetArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let (dir, temp) = prepare_dir(args.dir.clone())?;
        let result = devnet(args, &dir, temp.is_some()).await;
        // Also after a failed step: the log and any report say why.
        keep_reports(temp, &dir);
        result
    })
}

fn heading(n: u32, title: &str) {
    println!("\n── {n}. {title} ──");
}

fn say(line: impl Display) {
    println!("   {line}");
}

/// Prints `✓ what` when `ok`, else stops the devnet with what was expected.
fn check(ok: bool, step: &str, what: impl Display) -> anyhow::Result<()> {
    if ok {
        println!("   ✓ {what}");
        Ok(())
    } else {
        bail!("devnet check failed in step {step:?}: expected {what}")
    }
}

/// Runs a network step, bounded by [`STEP_TIMEOUT`].
async fn within<T, E>(what: &str, fut: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(r) => r.with_context(|| format!("{what} failed")),
        Err(_) => bail!("{what} did not finish within {STEP_TIMEOUT:?}"),
    }
}

/// One person's node.
struct Member {
    name: &'static str,
    node: Node,
    /// `None` while offline.
    running: Option<Running>,
    addr: SocketAddr,
}

impl Member {
    fn id(&self) -> NodeId {
        self.node.node_id()
    }

    /// A pre-split identity: the posting id is the NodeId.
    fn posting(&self) -> PostingId {
        PostingId(self.id().0)
    }

    /// The node's running side; an error while it is offline.
    fn running(&self) -> anyhow::Result<&Running> {
        self.running
            .as_ref()
            .ok_or_else(|| anyhow!("{} is offline", self.name))
    }

    fn connect_string(&self) -> anyhow::Result<ConnectString> {
        format!("{}@{}", self.id(), self.addr)
            .parse()
            .map_err(|e| anyhow!("connect string of {}: {e}", self.name))
    }

    fn label(&self) -> String {
        format!("{} ({})", self.name, self.id().short())
    }

    /// Whether `id` is in this node's feed with exactly `text` readable.
    fn feed_has(&self, id: PostId, text: &str) -> anyhow::Result<bool> {
        let hex = id.to_hex();
        Ok(self
            .node
            .feed(1000)?
            .iter()
            .any(|i| i.id == hex && i.text.as_deref() == Some(text)))
    }

    /// Closes the endpoint and drops it: the node is offline and its UDP
    /// port is free again.
    async fn go_offline(&mut self) {
        if let Some(r) = self.running.take() {
            r.transport().close().await;
        }
    }

    /// Binds the endpoint again, on the same address if it is still free.
    async fn come_back(&mut self) -> anyhow::Result<()> {
        let running = match self.node.start(Some(self.addr)).await {
            Ok(r) => r,
            Err(_) => self.node.start(Some(LOOPBACK)).await?,
        };
        self.addr = running.transport().local_addr()?;
        self.running = Some(running);
        write_node_config(&self.node, self.addr)?;
        Ok(())
    }
}

/// Rewrites `config.toml` with the address the node is bound to, so that
/// `distsoc-node run` on this directory later listens there again.
fn write_node_config(node: &Node, addr: SocketAddr) -> anyhow::Result<()> {
    let cfg = Config {
        listen: addr,
        ..node.config().clone()
    };
    let path = node.dir().join(distsoc_node::config::CONFIG_FILE);
    std::fs::write(&path, cfg.to_toml()).with_context(|| format!("cannot write {}", path.display()))
}

/// A data directory that must be absent or empty; `None`: a temp dir.
fn prepare_dir(dir: Option<PathBuf>) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match dir {
        Some(d) => {
            if d.exists()
                && std::fs::read_dir(&d)
                    .with_context(|| format!("cannot read {}", d.display()))?
                    .next()
                    .is_some()
            {
                bail!(
                    "{} is not empty: devnet creates a fresh network and needs an empty directory",
                    d.display()
                );
            }
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            Ok((d, None))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("distsoc-devnet-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

struct StartedAnchor {
    anchor: Anchor,
    id: NodeId,
    connect: ConnectString,
}

async fn start_anchor(dir: &Path) -> anyhow::Result<StartedAnchor> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = NetworkKey::create(&dir.join(KEY_FILE))?;
    let mut cfg = AnchorConfig {
        listen: LOOPBACK,
        admin_listen: "127.0.0.1:0".into(),
        metrics_listen: "127.0.0.1:0".into(),
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.to_path_buf(),
        drain_timeout: DRAIN,
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await?;
    let addr = anchor.local_addr()?;
    // Write the bound addresses, so `distsoc-anchor --data-dir DIR run`
    // brings the same anchor back later.
    cfg.listen = addr;
    cfg.admin_listen = anchor
        .admin_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    cfg.metrics_listen = anchor
        .metrics_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let toml = dir.join("anchor.toml");
    std::fs::write(&toml, cfg.to_toml())
        .with_context(|| format!("cannot write {}", toml.display()))?;
    let id = key.node_id();
    let connect = format!("{id}@{addr}")
        .parse()
        .map_err(|e| anyhow!("anchor connect string: {e}"))?;
    say(format!("anchor     {connect}"));
    say(format!("           store {}", cfg.store_url(dir)));
    if let (Some(admin), Some(metrics)) = (anchor.admin_addr(), anchor.metrics_addr()) {
        say(format!(
            "           admin gRPC {admin}, metrics http://{metrics}/metrics"
        ));
    }
    Ok(StartedAnchor {
        anchor,
        id,
        connect,
    })
}

async fn start_member(
    name: &'static str,
    dir: &Path,
    anchor: &ConnectString,
) -> anyhow::Result<Member> {
    let config = Config {
        listen: LOOPBACK,
        ..Config::default()
    };
    let node = Node::init(dir, Some(config))?;
    // The devnet's anchor is this node's only anchor.
    let anchors = node.config().anchors_path(node.dir());
    std::fs::write(&anchors, serde_json::to_string(&[anchor.to_string()])?)
        .with_context(|| format!("cannot write {}", anchors.display()))?;
    let running = node.start(Some(LOOPBACK)).await?;
    let addr = running.transport().local_addr()?;
    write_node_config(&node, addr)?;
    let m = Member {
        name,
        node,
        running: Some(running),
        addr,
    };
    say(format!("{:<10} {}", m.name, m.connect_string()?));
    Ok(m)
}

async fn devnet(args: DevnetArgs, dir: &Path, is_temp: bool) -> anyhow::Result<()> {
    let dir = dir.to_path_buf();
    println!("distsoc devnet: one anchor and three nodes on 127.0.0.1, real QUIC, real SQLite");
    println!("data directory: {}", dir.display());
    let log = start_log(&dir)?;
    println!(
        "log of the anchor and the nodes: {} (RUST_LOG sets the level; default info)",
        log.display()
    );

    heading(1, "start the network");
    let anchor = start_anchor(&dir.join("anchor")).await?;
    let alice = start_member("Alice", &dir.join("alice"), &anchor.connect).await?;
    let mut bob = start_member("Bob", &dir.join("bob"), &anchor.connect).await?;
    let carol = start_member("Carol", &dir.join("carol"), &anchor.connect).await?;
    say("(each person's NodeId is their Ed25519 key, pinned in every QUIC handshake)");
    print_connect_strings(
        &anchor,
        &[&alice, &bob, &carol],
        if args.keep {
            "the network is up; with --keep it stays up after the scenario"
        } else {
            "the network is up until the scenario ends; --keep keeps it running"
        },
    )?;

    let step = "profiles";
    heading(2, "everyone signs a public profile");
    for (m, bio) in [
        (&alice, "trains, maps and long walks"),
        (&bob, "bakes bread on Sundays"),
        (&carol, "new here"),
    ] {
        let p = m
            .node
            .set_profile(m.name.into(), bio.into(), vec![anchor.id])?;
        say(format!(
            "{} signed {:?} ({:?}), anchor {}",
            m.label(),
            p.body().display_name,
            p.body().bio,
            anchor.id.short()
        ));
        let stored = m.node.store().get_profile(m.posting())?;
        check(
            stored.map(|s| s.body().display_name.clone()).as_deref() == Some(m.name),
            step,
            format!("{}'s profile stored in its own node", m.name),
        )?;
    }

    let step = "follow";
    heading(3, "Bob and Carol follow Alice");
    for m in [&bob, &carol] {
        m.node.store().follow(alice.posting(), now_ms())?;
        check(
            m.node.store().is_following(alice.posting())?,
            step,
            format!(
                "{} follows Alice (private: kept in {}'s store, never gossiped)",
                m.name, m.name
            ),
        )?;
    }

    let step = "public post";
    heading(4, "Alice posts publicly; Bob and Carol pull it");
    let public_text = "Hello from Alice! This one is public.";
    let public = alice
        .node
        .post(public_text.into(), vec![], &VisibilityIntent::Public)?;
    let public_id = public.post_id();
    say(format!(
        "Alice signed post {} and stored it; followers fetch it by pull",
        public_id.short()
    ));
    let alice_cs = alice.connect_string()?;
    let mut to_alice: Vec<Peer> = Vec::new();
    for m in [&bob, &carol] {
        let peer = within(
            &format!("{} connecting to Alice", m.name),
            m.running()?.connect(&alice_cs),
        )
        .await?;
        let report = within(
            &format!("{} pulling from Alice", m.name),
            m.running()?.sync_with(&peer),
        )
        .await?;
        say(format!(
            "{} connected to Alice (profiles exchanged) and pulled {} new post(s)",
            m.name, report.new_posts
        ));
        check(
            m.feed_has(public_id, public_text)?,
            step,
            format!("{}'s feed shows {:?}", m.name, public_text),
        )?;
        let known = m
            .node
            .store()
            .get_profile(alice.posting())?
            .map(|p| p.body().display_name.clone());
        check(
            known.as_deref() == Some("Alice"),
            step,
            format!("{} knows Alice by her signed profile name", m.name),
        )?;
        to_alice.push(peer);
    }
    for m in [&bob, &carol] {
        let known = alice
            .node
            .store()
            .get_profile(m.posting())?
            .map(|p| p.body().display_name.clone());
        check(
            known.as_deref() == Some(m.name),
            step,
            format!("Alice received {}'s profile", m.name),
        )?;
    }

    let step = "circle post";
    heading(5, "Alice posts to her circle \"close\" (Bob only)");
    alice.node.store().create_circle("close", now_ms())?;
    alice
        .node
        .store()
        .add_circle_member("close", bob.posting(), now_ms())?;
    let circle_text = "Only for close friends: the surprise party is on Friday.";
    let circle = alice.node.post(
        circle_text.into(),
        vec![],
        &VisibilityIntent::Circle("close".into()),
    )?;
    let circle_id = circle.post_id();
    let recipients: Vec<String> = circle
        .visibility
        .recipients()
        .iter()
        .map(|w| NodeId(w.recipient).short())
        .collect();
    say(format!(
        "post {} is sealed: one content key, wrapped for {} ({})",
        circle_id.short(),
        recipients.len(),
        recipients.join(", ")
    ));
    check(
        circle.post.body().is_sealed()
            && circle
                .visibility
                .recipients()
                .iter()
                .all(|w| w.recipient == bob.id().0 || w.recipient == alice.id().0),
        step,
        "the circle post is encrypted for Bob and Alice only",
    )?;
    let (bob_peer, carol_peer) = (&to_alice[0], &to_alice[1]);
    let bob_report = within("Bob pulling from Alice", bob.running()?.sync_with(bob_peer)).await?;
    say(format!("Bob pulled {} new post(s)", bob_report.new_posts));
    check(
        bob.feed_has(circle_id, circle_text)?,
        step,
        format!("Bob decrypts and reads {circle_text:?}"),
    )?;
    let carol_report = within(
        "Carol pulling from Alice",
        carol.running()?.sync_with(carol_peer),
    )
    .await?;
    say(format!(
        "Carol pulled {} new post(s): the pull filter sends an encrypted post only to its recipients",
        carol_report.new_posts
    ));
    check(
        carol.node.store().get_post(circle_id)?.is_none()
            && !carol.feed_has(circle_id, circle_text)?,
        step,
        "Carol's pull did not include the circle post at all",
    )?;
    let carol_seeds = carol.node.reading_seeds()?;
    let opened = carol_seeds
        .iter()
        .any(|s| open_post(s, &circle.post, &circle.visibility).is_ok());
    check(
        !opened,
        step,
        "even holding the ciphertext, Carol's keys cannot open it",
    )?;

    let step = "DM while offline";
    heading(6, "Bob goes offline; Alice DMs him through the anchor");
    // Bob's connection handles keep his endpoint (and its port) alive.
    drop(to_alice);
    bob.go_offline().await;
    say(format!("Bob's endpoint {} is closed", bob.addr));
    let away_text = "Posted while Bob was away.";
    let away = alice
        .node
        .post(away_text.into(), vec![], &VisibilityIntent::Public)?;
    let away_id = away.post_id();
    say(format!(
        "meanwhile Alice posts {} publicly",
        away_id.short()
    ));
    let alice_dm = within(
        "Alice connecting to the anchor",
        DmClient::connect(alice.running()?, &anchor.connect),
    )
    .await?;
    let channel = within(
        "CreateChannel (Alice, Bob)",
        alice_dm.channel_with(bob.id()),
    )
    .await?;
    say(format!(
        "anchor made channel {} for Alice and Bob (CreateChannel)",
        channel.id
    ));
    let dm_text = "Bob, can you bring the bread on Friday? — A.";
    let outgoing = alice_dm.seal(bob.id(), dm_text)?;
    let sent = within("Enqueue", alice_dm.enqueue(channel.id, &outgoing)).await?;
    say(format!(
        "Alice sealed the DM for Bob and enqueued it: message {}, {} bytes, kept {} days if never fetched",
        sent.message_id,
        sent.payload_len,
        sent.expires_at_ms.saturating_sub(sent.received_at_ms) / 86_400_000
    ));
    check(
        !contains(&outgoing.payload, dm_text.as_bytes()),
        step,
        "the anchor holds ciphertext only (the text is not in the payload)",
    )?;
    let retry = within("Enqueue retry", alice_dm.enqueue(channel.id, &outgoing)).await?;
    check(
        retry.message_id == sent.message_id,
        step,
        format!(
            "a retry with the same clientMessageId is acknowledged as message {} again, not stored twice",
            sent.message_id
        ),
    )?;
    let stats = anchor.anchor.service.store().stats().await?;
    check(
        stats.queued_messages == 1,
        step,
        "exactly one message waits at the anchor",
    )?;

    let step = "reconnect";
    heading(7, "Bob comes back: reads the DM, catches up by pull");
    let old_addr = bob.addr;
    bob.come_back().await?;
    if bob.addr == old_addr {
        say(format!("Bob is back on {}", bob.connect_string()?));
    } else {
        say(format!(
            "Bob is back on {} (his old port was taken)",
            bob.connect_string()?
        ));
    }
    let bob_dm = within(
        "Bob connecting to the anchor",
        DmClient::connect(bob.running()?, &anchor.connect),
    )
    .await?;
    let channels = within("ListChannels", bob_dm.list_channels()).await?;
    let waiting = channels
        .iter()
        .find(|c| c.channel_id == channel.id && c.peer == alice.id())
        .map_or(0, |c| c.queued);
    check(
        waiting == 1,
        step,
        format!(
            "ListChannels shows channel {} with Alice, 1 DM waiting",
            channel.id.short()
        ),
    )?;
    let page = within(
        "FetchWait",
        bob_dm.fetch_wait(Some(channel.id), 0, Duration::from_secs(5)),
    )
    .await?;
    let got = page
        .messages
        .iter()
        .find(|m| m.message_id == sent.message_id);
    match got.map(|m| (&m.content, m.sender)) {
        Some((Ok(c), sender)) => {
            say(format!("Bob fetched and decrypted: {:?}", c.text));
            check(
                c.text == dm_text && sender == alice.id(),
                step,
                "the DM reads as Alice wrote it and is signed by Alice",
            )?;
        }
        Some((Err(e), _)) => {
            bail!("devnet check failed in step {step:?}: Bob cannot open the DM: {e}")
        }
        None => bail!("devnet check failed in step {step:?}: the DM was not delivered to Bob"),
    }
    within(
        "acknowledging the DM",
        bob_dm.ack(Some(channel.id), page.last_message_id()),
    )
    .await?;
    let after = within("ListChannels", bob_dm.list_channels()).await?;
    check(
        after.iter().all(|c| c.queued == 0),
        step,
        "acknowledged (ackThrough): the anchor deleted it",
    )?;
    let peer = within(
        "Bob reconnecting to Alice",
        bob.running()?.connect(&alice_cs),
    )
    .await?;
    let report = within("Bob pulling from Alice", bob.running()?.sync_with(&peer)).await?;
    say(format!(
        "Bob pulled from Alice from his saved cursor: {} new post(s), {} already held",
        report.new_posts, report.duplicates
    ));
    check(
        report.new_posts == 1 && bob.feed_has(away_id, away_text)?,
        step,
        format!("Bob caught up with exactly the post he missed: {away_text:?}"),
    )?;

    heading(
        8,
        "Dave knows only the anchor: he finds Alice by NodeId through the mesh",
    );
    let dave = mesh::newcomer_finds_alice(
        &dir.join("dave"),
        &anchor.connect,
        &alice,
        (public_id, public_text),
    )
    .await?;

    heading(9, "conformance suite against the anchor");
    if args.no_suite {
        say("skipped (--no-suite)");
    } else {
        // The reports live in the network directory; a temporary one
        // keeps them (and only them) on exit.
        let out = dir.join(REPORTS_DIR);
        run_suite(&anchor.connect.to_string(), &out).await?;
    }

    if args.mesh_nodes > 0 {
        heading(
            10,
            &format!(
                "{} more nodes join through the anchor; their maps fill",
                args.mesh_nodes
            ),
        );
        mesh::watch_map_fill(
            &dir.join("mesh"),
            &anchor.connect,
            args.mesh_nodes,
            Duration::from_secs(args.mesh_watch),
        )
        .await?;
    }

    println!("\nAll scenario checks passed.");
    if args.keep {
        // Bob came back, possibly on another port: the strings as they are.
        print_connect_strings(
            &anchor,
            &[&alice, &bob, &carol],
            "the network keeps running",
        )?;
    }

    if let Some(r) = &dave.running {
        r.transport().close().await;
    }
    let members = [alice, bob, carol];
    if args.keep {
        keep_running(&dir, is_temp, &anchor, &members).await;
    } else {
        for m in &members {
            if let Some(r) = &m.running {
                r.transport().close().await;
            }
        }
    }
    anchor.anchor.stop(DRAIN).await;
    println!("network stopped");
    Ok(())
}

/// The conformance reports' directory inside the network directory.
const REPORTS_DIR: &str = "conformance";
/// The log directory inside the network directory.
const LOGS_DIR: &str = "logs";

/// Sends this process's log (the anchor's and the nodes' tracing events)
/// to `DIR/logs/devnet.log`, plain text, at `RUST_LOG` or `info`.
fn start_log(dir: &Path) -> anyhow::Result<PathBuf> {
    let logs = dir.join(LOGS_DIR);
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let path = logs.join("devnet.log");
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A subscriber set earlier in this process (none in `distsoc`) wins.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(path)
}

/// Prints the connect strings of the anchor and the nodes (while they are
/// up), with `note` saying for how long.
fn print_connect_strings(
    anchor: &StartedAnchor,
    members: &[&Member],
    note: &str,
) -> anyhow::Result<()> {
    println!("\nConnect strings ({note}):");
    println!("   {:<7} {}", "anchor", anchor.connect);
    for m in members {
        println!("   {:<7} {}", m.name.to_lowercase(), m.connect_string()?);
    }
    Ok(())
}

/// A temporary network directory is removed on exit except its
/// conformance reports and its log, which stay where they were written
/// (`DIR/conformance`, `DIR/logs`); a `--dir` directory is kept whole.
fn keep_reports(temp: Option<tempfile::TempDir>, dir: &Path) {
    let Some(temp) = temp else {
        return;
    };
    let kept = temp.keep();
    let mut left = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&kept) {
        for e in entries.flatten() {
            if e.file_name() == REPORTS_DIR || e.file_name() == LOGS_DIR {
                continue;
            }
            let p = e.path();
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            if removed.is_err() {
                left.push(p);
            }
        }
    }
    let kept: Vec<String> = [REPORTS_DIR, LOGS_DIR]
        .iter()
        .map(|d| dir.join(d))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    println!(
        "the temporary network directory was removed except: {}",
        kept.join(", ")
    );
    for p in left {
        println!("   (could not remove {})", p.display());
    }
}

/// Keeps the nodes serving until Ctrl-C (or SIGTERM), then closes them.
async fn keep_running(dir: &Path, is_temp: bool, anchor: &StartedAnchor, members: &[Member]) {
    let d = dir.display();
    let alice = members[0].id();
    println!("\nThe network keeps running. In another terminal (build first:");
    println!("`cargo build --release -p distsoc-node`, then N=./target/release/distsoc-node):");
    let carol = &members[2];
    let carol_cs = carol
        .connect_string()
        .map(|c| c.to_string())
        .unwrap_or_default();
    println!("   $N --data-dir {d}/carol post \"hello from Carol\"");
    println!("   $N --data-dir {d}/bob follow {}", carol.id());
    println!("   $N --data-dir {d}/bob connect {carol_cs}");
    println!("   $N --data-dir {d}/bob feed");
    println!("   $N --data-dir {d}/bob dm send --to {alice} \"thanks, see you Friday\"");
    println!("   $N --data-dir {d}/alice dm read");
    println!("   $N --data-dir {d}/alice dm channels");
    println!(
        "(the dm commands use the anchor in each node's anchors.json: {})",
        anchor.connect
    );
    if is_temp {
        println!(
            "The data directory is temporary and is removed on exit, except its conformance \
             reports and log (use --dir to keep it all)."
        );
    }
    println!("Press Ctrl-C to stop.");
    // The nodes keep serving but do not dial anyone on their own, and their
    // scenario connections are closed: `distsoc-node` on the same data
    // directory is the same identity, and a node keeps only one connection
    // per identity, so a live one could win over the command's.
    for m in members {
        if let Some(r) = &m.running {
            for info in r.transport().peers() {
                if let Some(p) = r.transport().peer(&info.node_id) {
                    p.close();
                }
            }
        }
    }
    shutdown_signal().await;
    println!("\nstopping…");
    for m in members {
        if let Some(r) = &m.running {
            r.transport().close().await;
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs the conformance suite against the anchor at `anchor_connect`
/// (`NodeId@host:port`), prints its summary and writes its HTML and JSON
/// reports in `out_dir`. A failed suite (a MUST case failing, or an error)
/// fails the devnet.
async fn run_suite(anchor_connect: &str, out_dir: &Path) -> anyhow::Result<()> {
    use distsoc_conformance::suite::model::Role;
    use distsoc_conformance::suite::runner::{self, RunConfig};
    use distsoc_conformance::suite::{html, report};

    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let cfg = RunConfig::new(anchor_connect, Role::Anchor);
    say(format!(
        "running {} cases against {anchor_connect} (role anchor)…",
        runner::selection(&cfg).len()
    ));
    let report = runner::run(cfg)
        .await
        .context("the conformance suite could not run")?;
    let html_path = out_dir.join("report.html");
    std::fs::write(&html_path, html::render(&report))
        .with_context(|| format!("cannot write {}", html_path.display()))?;
    let json_path = out_dir.join("report.json");
    std::fs::write(&json_path, report::json(&report)?)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    say(report::summary_line(&report));
    say(format!("HTML report: {}", html_path.display()));
    say(format!("JSON report: {}", json_path.display()));
    if report.failed() {
        for r in report.results.iter().filter(|r| r.verdict.is_failure()) {
            say(format!(
                "✗ {} {}: expected {}, got {}",
                r.case.id,
                r.verdict.as_str(),
                r.expected,
                r.actual
            ));
        }
        bail!(
            "the anchor failed the conformance suite (details in {})",
            html_path.display()
        );
    }
    Ok(())
}
