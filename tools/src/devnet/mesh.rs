//! The devnet's mesh parts: a newcomer who knows only the anchor finds a
//! person by NodeId through the mesh (a scenario step), and `--mesh-nodes
//! N`, a larger network in one process whose maps are watched filling.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use distsoc_net::now_ms;
use distsoc_node::config::Config;
use distsoc_node::mesh::mesh_config;
use distsoc_node::node::{Node, Running};
use distsoc_protocol::ids::{ConnectString, PostId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::mesh::MeshConfig;
use distsoc_protocol::messages::discovery::AddressRequest;

use super::{check, say, within, Member, LOOPBACK};

/// The scenario step: Dave's node is new and knows only the anchor's
/// connect string. He looks Alice up by her NodeId, connects by NodeId
/// alone, follows her and pulls her public post.
pub(super) async fn newcomer_finds_alice(
    dir: &Path,
    anchor: &ConnectString,
    alice: &Member,
    public: (PostId, &str),
) -> anyhow::Result<Member> {
    let step = "mesh";
    // Alice is in the anchor's map while she holds a connection to it.
    let alice_run = alice.running()?;
    let up = alice_run.connect_anchors().await;
    check(
        !up.is_empty(),
        step,
        "Alice holds a connection to the anchor",
    )?;
    // The anchor hands out Alice's address once it has verified it by
    // dialling back (a few milliseconds): wait for that, bounded.
    let mut verified = false;
    for _ in 0..50 {
        let ask = AddressRequest {
            version: PROTOCOL_VERSION,
            targets: vec![alice.id()],
            depth: 0,
        };
        if let Some(a) = up.first() {
            if let Ok(r) = a.call(ask).await {
                if r.entries.first().is_some_and(|e| e.peer.is_some()) {
                    verified = true;
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check(
        verified,
        step,
        "the anchor verified Alice's address by dialling back",
    )?;
    let dave = super::start_member("Dave", dir, anchor).await?;
    let res = within("Dave's lookup of Alice", dave.running()?.lookup(alice.id())).await?;
    let tier = res
        .found
        .as_ref()
        .map(|(_, t)| t.as_str())
        .unwrap_or("none");
    say(format!(
        "Dave asked the mesh for {}: tier {tier}, {} request(s), {} ms",
        alice.id().short(),
        res.messages,
        res.elapsed.as_millis()
    ));
    check(
        res.found.is_some(),
        step,
        "the mesh resolves Alice's NodeId with no connect string given",
    )?;
    dave.node.store().follow(alice.posting(), now_ms())?;
    let (peer, _) = within(
        "Dave connecting to Alice by NodeId",
        dave.running()?.connect_id(alice.id()),
    )
    .await?;
    let report = within("Dave pulling from Alice", dave.running()?.sync_with(&peer)).await?;
    say(format!(
        "Dave connected to Alice by NodeId alone and pulled {} new post(s)",
        report.new_posts
    ));
    check(
        dave.feed_has(public.0, public.1)?,
        step,
        format!("Dave's feed shows Alice's {:?}", public.1),
    )?;
    Ok(dave)
}

/// `--mesh-nodes N`: N nodes with the desktop profile's logic on a smaller
/// scale (slots shrunk so a few dozen nodes form a mesh rather than a
/// clique), all knowing only the anchor, each following its two ring
/// neighbours; prints the median map every 10 s for `watch`.
pub(super) async fn watch_map_fill(
    dir: &Path,
    anchor: &ConnectString,
    nodes: usize,
    watch: Duration,
) -> anyhow::Result<()> {
    let config = MeshConfig {
        social_slots: 4,
        wide_slots: 4,
        min_anchors: 1,
        ..mesh_config(distsoc_node::config::MeshProfile::Desktop)
    };
    let mut running: Vec<(Node, Running)> = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let d = dir.join(format!("n{i:03}"));
        let node = Node::init(
            &d,
            Some(Config {
                listen: LOOPBACK,
                ..Config::default()
            }),
        )?;
        let anchors = node.config().anchors_path(node.dir());
        std::fs::write(&anchors, serde_json::to_string(&[anchor.to_string()])?)
            .with_context(|| format!("cannot write {}", anchors.display()))?;
        let r = node.start_mesh(Some(LOOPBACK), config.clone()).await?;
        running.push((node, r));
    }
    // Each follows its ring neighbours (social candidates), then joins.
    for i in 0..nodes {
        for j in [(i + 1) % nodes, (i + nodes - 1) % nodes] {
            let id = running[j].0.node_id();
            running[i]
                .0
                .store()
                .follow(distsoc_protocol::ids::PostingId(id.0), now_ms())?;
        }
    }
    for (_, r) in &running {
        r.join_mesh().await;
    }
    say(format!(
        "{nodes} nodes joined through the anchor; watching their maps for {}s",
        watch.as_secs()
    ));
    let start = Instant::now();
    loop {
        let mut h1: Vec<usize> = Vec::new();
        let mut h2: Vec<usize> = Vec::new();
        let mut h3: Vec<usize> = Vec::new();
        let mut bytes: Vec<usize> = Vec::new();
        for (_, r) in &running {
            let s = r.mesh().map_stats();
            h1.push(s.hop1);
            h2.push(s.hop2);
            h3.push(s.hop3);
            bytes.push(s.bytes);
        }
        let p50 = |v: &mut Vec<usize>| {
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        say(format!(
            "t={:>4}s  map p50: hop1 {:>3}  hop2 {:>4}  hop3 {:>5}  ({} bytes)",
            start.elapsed().as_secs(),
            p50(&mut h1),
            p50(&mut h2),
            p50(&mut h3),
            p50(&mut bytes)
        ));
        if start.elapsed() >= watch {
            break;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    for (_, r) in &running {
        r.mesh().stop();
        r.transport().close().await;
    }
    Ok(())
}
