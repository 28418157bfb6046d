//! `distsoc-node dm …`: direct messages through an anchor's channels,
//! rotated threads and the local archive.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Subcommand;
use distsoc_node::dm::DmClient;
use distsoc_node::node::Node;
use distsoc_protocol::ids::{ConnectString, NodeId, PostingId};
use serde_json::json;

use super::identity::{self, fmt_utc};
use super::print;

#[derive(Debug, Subcommand)]
pub(crate) enum DmCommand {
    /// Show the thread with a peer from the local archive (every DM sent
    /// and read here, with times; no anchor needed).
    History {
        /// The peer's NodeId.
        peer: NodeId,
        /// Most recent messages to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send a DM to a NodeId through an anchor, on a rotated thread: the
    /// first message goes from your NodeId to theirs and starts a chain of
    /// short-lived ids; every later one goes under ids of its own, which the
    /// anchor cannot tie to you, to them or to each other.
    Send {
        /// The anchor (`NodeId@host:port`); default: the first entry of
        /// anchors.json.
        #[arg(long)]
        anchor: Option<ConnectString>,
        /// The recipient's NodeId.
        #[arg(long)]
        to: NodeId,
        /// Restart the thread's chain from your NodeId (when the recipient
        /// lost track of it: more than 10 messages in a row lost).
        #[arg(long)]
        reseed: bool,
        /// Send from your NodeId to theirs without rotating ids.
        #[arg(long, conflicts_with = "reseed")]
        no_rotate: bool,
        /// The text.
        text: String,
    },
    /// Fetch, decrypt and print your queued DMs (those to your NodeId and
    /// those of rotated threads, read under each thread's window of 10
    /// short-lived ids), keep them in the local archive (`dm history`), then
    /// acknowledge them (the anchor deletes them).
    Read {
        /// The anchor; default: the first entry of anchors.json.
        #[arg(long)]
        anchor: Option<ConnectString>,
        /// Leave them queued at the anchor (they come again next time).
        #[arg(long)]
        keep: bool,
    },
    /// List your channels at an anchor and the DMs waiting in each.
    Channels {
        /// The anchor; default: the first entry of anchors.json.
        #[arg(long)]
        anchor: Option<ConnectString>,
    },
}

/// The anchor given, else the first connect string in anchors.json.
fn dm_anchor(node: &Node, given: Option<ConnectString>) -> anyhow::Result<ConnectString> {
    if let Some(a) = given {
        return Ok(a);
    }
    let path = node.config().anchors_path(node.dir());
    let first = distsoc_node::config::read_anchors(&path)?
        .into_iter()
        .next()
        .with_context(|| {
            format!(
                "no anchor given and {} lists none: pass --anchor NodeId@host:port",
                path.display()
            )
        })?;
    first
        .parse()
        .map_err(|e| anyhow::anyhow!("bad connect string {first:?} in {}: {e}", path.display()))
}

pub(crate) fn dm(node: &Node, cmd: DmCommand, json_mode: bool) -> anyhow::Result<()> {
    let anchor = match &cmd {
        DmCommand::History { peer, limit } => {
            return identity::dm_history(node, *peer, *limit, json_mode)
        }
        DmCommand::Send { anchor, .. }
        | DmCommand::Read { anchor, .. }
        | DmCommand::Channels { anchor } => dm_anchor(node, anchor.clone())?,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let running = node
            .start(Some(SocketAddr::from(([0, 0, 0, 0], 0))))
            .await?;
        let result = dm_on(node, &running, &anchor, cmd, json_mode).await;
        running.transport().close().await;
        result
    })
}

async fn dm_on(
    node: &Node,
    running: &distsoc_node::node::Running,
    anchor: &ConnectString,
    cmd: DmCommand,
    json_mode: bool,
) -> anyhow::Result<()> {
    let client = DmClient::connect(running, anchor)
        .await
        .with_context(|| format!("cannot reach the anchor {anchor}"))?;
    match cmd {
        DmCommand::Send {
            to,
            text,
            reseed,
            no_rotate,
            ..
        } => {
            let (sent, rotated) = if no_rotate {
                (client.send(to, &text).await?, None)
            } else {
                let r = client.send_rotating(to, &text, reseed).await?;
                (r.sent, Some(r))
            };
            let mut v = json!({"channel": sent.channel.to_hex(), "message_id": sent.message_id,
                               "expires_at_ms": sent.expires_at_ms});
            if let Some(r) = rotated {
                v["chain_n"] = json!(r.n);
                v["send_id"] = json!(r.send_id.to_hex());
                v["recv_id"] = json!(r.recv_id.to_hex());
            }
            print(json_mode, v, || {
                format!(
                    "sent to {} (channel {}, message {}; sealed, {} bytes at the anchor)",
                    name_of(node, to),
                    sent.channel.short(),
                    sent.message_id,
                    sent.payload_len
                )
            });
        }
        DmCommand::Read { keep, .. } => {
            // The identity channels first: a first message there starts the
            // chain the rotated threads are then read with.
            let mut received = client.read_all(!keep).await?;
            received.extend(client.read_rotated(!keep).await?);
            let name = |id: NodeId| name_of(node, id);
            let v: Vec<_> = received
                .iter()
                .map(|r| match &r.content {
                    Ok(c) => json!({"message_id": r.message_id, "from": r.sender.to_hex(),
                                    "sent_at_ms": c.sent_at_ms, "text": c.text,
                                    "rotated": r.rotated}),
                    Err(e) => json!({"message_id": r.message_id, "from": r.sender.to_hex(),
                                     "error": e.to_string(), "kept": true}),
                })
                .collect();
            print(json_mode, json!(v), || {
                if received.is_empty() {
                    return "no DMs waiting".to_string();
                }
                received
                    .iter()
                    .map(|r| match &r.content {
                        Ok(c) => {
                            format!("{}  {}: {}", fmt_utc(c.sent_at_ms), name(r.sender), c.text)
                        }
                        Err(e) => format!(
                            "{}: (unreadable: {e}; kept in this node's store, not lost)",
                            name(r.sender)
                        ),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DmCommand::History { .. } => unreachable!("handled without an anchor"),
        DmCommand::Channels { .. } => {
            let channels = client.list_channels().await?;
            let v: Vec<_> = channels
                .iter()
                .map(|c| {
                    json!({"channel": c.channel_id.to_hex(), "peer": c.peer.to_hex(),
                                "queued": c.queued, "created_at_ms": c.created_at_ms})
                })
                .collect();
            print(json_mode, json!(v), || {
                channels
                    .iter()
                    .map(|c| {
                        format!(
                            "{} with {}: {} waiting",
                            c.channel_id,
                            name_of(node, c.peer),
                            c.queued
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

/// A peer's display name where its profile is known, else its short id.
pub(crate) fn name_of(node: &Node, id: NodeId) -> String {
    node.store()
        .get_profile(PostingId(id.0))
        .ok()
        .flatten()
        .map(|p| format!("{} ({})", p.body().display_name, id.short()))
        .unwrap_or_else(|| id.short())
}
